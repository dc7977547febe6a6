"""The requirements files, their lock files, the images and `make lint` agree.

Each environment has a requirements file whose test and lint tools come after a ``# tests`` line,
and a lock file with every package's version. The images install only what comes before that
line, at the lock file's versions; the local installs install everything, at the same versions;
`make test` starts with `make lint`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
DOCKER = ROOT / "deploy" / "docker"
TEST_TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "schemathesis", "playwright", "ruff", "mypy"}
# (requirements file, lock file, the image's Dockerfile, the local install script)
ENVIRONMENTS = [
    ("bot.txt", "bot-lock.txt", "bot.Dockerfile", "install.sh"),
    ("handoff.txt", "handoff-lock.txt", "handoff.Dockerfile", "install_handoff.sh"),
]
STRIP_TESTS = "sed -i '/^# tests/,$d'", "sed '/^# tests/,$d'"


def pins(text: str) -> Dict[str, str]:
    """``name==version`` lines by normalised name (comments and ranges left out)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


def runtime_part(text: str) -> str:
    """What comes before the ``# tests`` line."""
    return re.split(r"(?m)^# tests$", text, maxsplit=1)[0]


@pytest.mark.parametrize("requirements, lock, dockerfile, script", ENVIRONMENTS)
def test_the_image_installs_no_test_or_lint_tool(requirements, lock, dockerfile, script):
    text = (REQUIREMENTS / requirements).read_text()
    assert re.search(r"(?m)^# tests$", text), f"{requirements} has no '# tests' block"
    runtime = pins(runtime_part(text))
    assert not TEST_TOOLS & set(runtime), f"{requirements} installs {TEST_TOOLS & set(runtime)} in the image"
    assert not [name for name in runtime if name.startswith("types-")]
    assert {"pytest", "ruff", "mypy"} <= set(pins(text)), f"the local install of {requirements} lacks make lint's tools"
    image = (DOCKER / dockerfile).read_text()
    assert any(f"{strip} /tmp/requirements/{requirements}" in image for strip in STRIP_TESTS), \
        f"{dockerfile} installs the '# tests' block of {requirements}"


@pytest.mark.parametrize("requirements, lock, dockerfile, script", ENVIRONMENTS)
def test_the_image_and_the_local_install_use_the_lock_file(requirements, lock, dockerfile, script):
    wanted = pins((REQUIREMENTS / requirements).read_text())
    locked = pins((REQUIREMENTS / lock).read_text())
    for name, version in wanted.items():
        assert locked.get(name) == version, f"{lock} has {name}=={locked.get(name)}, {requirements} wants {version}"
    assert f"-c /tmp/requirements/{lock}" in (DOCKER / dockerfile).read_text()
    install = (ROOT / "scripts" / script).read_text()
    assert f"requirements/{lock}" in install and re.search(r"pip install .*-r .* -c ", install)


def recipe(makefile: str, target: str) -> str:
    match = re.search(rf"(?m)^{target}:.*\n((?:\t.*\n)+)", makefile)
    assert match, f"no {target} target"
    return match.group(1)


def test_make_test_starts_with_ruff_and_mypy_in_both_environments():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(MAKE) --no-print-directory lint" in recipe(makefile, "test").splitlines()[0]
    lint = recipe(makefile, "lint")
    assert "$(PY) -m ruff check" in lint
    assert "$(PY) -m mypy" in lint and "$(HPY) -m mypy" in lint
