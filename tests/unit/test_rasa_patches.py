"""The Rasa server's changes to Rasa (bot/rasa_patches.py) and its entry point (bot/server.py):
installed in one place when the server starts, never on import; refused, loudly, on a Rasa release
they are not written for or one that lacks what they replace."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import pytest
import rasa
import rasa.__main__
import rasa.core.run

from bot import rasa_patches, server
from bot.rasa_guard import SUPPORTED_RASA_VERSIONS, UnsupportedRasa
from contract.log_masking import MaskingFilter
from scripts.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
# Each attribute once, with the first patch that needs it (the one a refusal names).
EVERY_TARGET = list({target: (needed_for, target) for needed_for, target in reversed(
    [(patch.what, target) for patch in rasa_patches.PATCHES for target in patch.replaces]
    + [(needed_for, target) for needed_for, targets in rasa_patches.RELIED_ON for target in targets])}.values())


def recording(patches) -> Tuple[List[str], Tuple[rasa_patches.Patch, ...]]:
    """The same patches, whose install only records that it was called."""
    installed: List[str] = []
    return installed, tuple(rasa_patches.Patch(p.what, p.replaces, lambda p=p: installed.append(p.what))
                            for p in patches)


def test_an_unsupported_rasa_is_refused_naming_the_found_and_supported_releases(monkeypatch):
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    installed, patches = recording(rasa_patches.PATCHES)
    with pytest.raises(UnsupportedRasa) as refused:
        rasa_patches.install(patches)
    assert "rasa 3.7.0 is installed" in str(refused.value)
    assert "for rasa 3.6.21 only" in str(refused.value)
    assert installed == []


def test_the_server_does_not_start_on_an_unsupported_rasa(monkeypatch):
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    monkeypatch.setattr(rasa.__main__, "main", lambda: pytest.fail("Rasa was started"))
    with pytest.raises(SystemExit) as stopped:
        server.main(["run", "--model", "models/helder.tar.gz"])
    message = str(stopped.value.code)
    assert message.startswith("bot.server: the Rasa server does not start: rasa 3.7.0 is installed")
    assert "3.6.21" in message


def _definers(target: str) -> List[Tuple[Any, str]]:
    """Where ``target`` is defined: its module, or each class of its owner's MRO that defines it."""
    module_name, _, qualified_name = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = qualified_name.split(".")
    for part in path:
        owner = getattr(owner, part)
    if not isinstance(owner, type):
        return [(owner, name)]
    return [(cls, name) for cls in owner.__mro__ if name in vars(cls)]


@pytest.mark.parametrize("needed_for, target", EVERY_TARGET, ids=[target for _, target in EVERY_TARGET])
def test_a_missing_attribute_is_refused_loudly_and_nothing_is_installed(monkeypatch, needed_for, target):
    for owner, name in _definers(target):
        monkeypatch.delattr(owner, name)
    installed, patches = recording(rasa_patches.PATCHES)
    with pytest.raises(UnsupportedRasa) as refused:
        rasa_patches.install(patches)
    assert f"{needed_for} needs {target}, which this Rasa does not have" in str(refused.value)
    assert installed == []


def test_every_patch_and_reliance_names_something_this_rasa_has():
    assert len(EVERY_TARGET) >= 10
    for _, target in EVERY_TARGET:
        assert _definers(target), target


# A script run in a fresh interpreter: nothing of the test session is installed there yet.
IMPORTS_THEN_ENTRY_POINT = """
import json, pkgutil, sys
import rasa.__main__, rasa.core.run
import rasa.core.actions.action as action
import rasa.utils.endpoints as endpoints
import rasa.shared.core.events as events
import rasa.core.processor as processor

def rasa_now():
    return {"RemoteAction.run": action.RemoteAction.run,
            "RemoteAction._validate_action_result": action.RemoteAction._validate_action_result,
            "ActionExtractSlots.run": action.ActionExtractSlots.run,
            "DEFAULT_REQUEST_TIMEOUT": action.DEFAULT_REQUEST_TIMEOUT,
            "configure_app": rasa.core.run.configure_app,
            "EndpointConfig.session": endpoints.EndpointConfig.session,
            "Event.resolve_by_type": events.Event.resolve_by_type,
            "MessageProcessor.parse_message": processor.MessageProcessor.parse_message}

def changed(since):
    return sorted(name for name, value in rasa_now().items() if value is not since[name])

untouched = rasa_now()
import bot
imported = [m.name for m in pkgutil.walk_packages(bot.__path__, "bot.")]
for name in imported:
    __import__(name)
after_imports = changed(untouched)
started = {}
rasa.__main__.main = lambda: started.update(argv=sys.argv, changed=changed(untouched))
from bot import server
server.main(["run", "--model", "models/helder.tar.gz", "--port", "5005"])
print(json.dumps({"imported": imported, "after_imports": after_imports, **started}))
"""


def run_fresh(script: str) -> Any:
    """What ``script`` prints last, as JSON, run in a new interpreter (nothing installed yet)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTION_")}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RASA_TELEMETRY_ENABLED="false")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fresh_process():
    return run_fresh(IMPORTS_THEN_ENTRY_POINT)


def test_importing_bot_changes_nothing_in_rasa(fresh_process):
    assert {"bot.nlu", "bot.tracker_store", "bot.rasa_patches", "bot.server"} <= set(fresh_process["imported"])
    assert fresh_process["after_imports"] == []


def test_the_entry_point_installs_everything_then_hands_rasa_the_same_arguments(fresh_process):
    assert fresh_process["changed"] == ["ActionExtractSlots.run", "DEFAULT_REQUEST_TIMEOUT", "EndpointConfig.session",
                                        "Event.resolve_by_type", "MessageProcessor.parse_message",
                                        "RemoteAction._validate_action_result", "RemoteAction.run", "configure_app"]
    assert fresh_process["argv"] == ["rasa", "run", "--model", "models/helder.tar.gz", "--port", "5005"]


async def _start_and_stop(app) -> None:
    """What Sanic does around serving: the start-up listeners, then the shutdown."""
    server_ = await app.create_server(host="127.0.0.1", port=free_port(), return_asyncio_server=True)
    await server_.startup()
    await server_.before_start()
    await server_.after_start()
    await server_.before_stop()
    await server_.close()
    await server_.after_stop()


def test_the_servers_log_handlers_mask_personal_data_from_its_start(monkeypatch):
    from sanic import Sanic

    rasa_patches.install()
    monkeypatch.setattr(Sanic, "test_mode", True)  # one more Rasa app in this process
    handler = logging.StreamHandler(io.StringIO())  # made before the start, as Rasa's, Sanic's and --log-file's are
    made_by_rasa = logging.getLogger("tests.rasa_patches.server")
    made_by_rasa.addHandler(handler)
    try:
        app = rasa.core.run.configure_app(enable_api=False)
        assert not any(isinstance(f, MaskingFilter) for f in handler.filters)
        asyncio.run(_start_and_stop(app))
        assert any(isinstance(f, MaskingFilter) for f in handler.filters)
    finally:
        made_by_rasa.removeHandler(handler)


def test_the_supported_rasa_is_the_one_pinned_and_tested():
    pinned = re.search(r"^rasa(?:\[[^\]]*\])?==(\S+)", (ROOT / "requirements" / "bot.txt").read_text(), re.M)
    assert pinned and pinned.group(1) in SUPPORTED_RASA_VERSIONS
    assert rasa.__version__ in SUPPORTED_RASA_VERSIONS


# Rasa's own server started directly: Python's -m with rasa and run, or the shell command with options.
PLAIN_RASA_RUN = re.compile(r"""-m["',\s]+rasa["',\s]+run\b|\brasa run --""")
# scripts/bench_turns.py serves `rasa init`'s starter bot as the benchmark's baseline: plain Rasa.
NOT_THE_ASSISTANT = {"scripts/bench_turns.py"}


def test_every_start_of_the_assistants_rasa_server_goes_through_the_entry_point():
    starters = [*ROOT.glob("scripts/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("deploy/**/*.sh"),
                *ROOT.glob("deploy/**/*.yaml"), ROOT / "Makefile", ROOT / "docker-compose.yml"]
    plain = [str(path.relative_to(ROOT)) for path in starters
             if PLAIN_RASA_RUN.search(path.read_text()) and str(path.relative_to(ROOT)) not in NOT_THE_ASSISTANT]
    assert plain == []
    assert '"-m", "bot.server", "run"' in (ROOT / "scripts" / "stack.py").read_text()
    assert "exec python -m bot.server run " in (ROOT / "deploy" / "docker" / "bot-entrypoint.sh").read_text()


# In a fresh interpreter: every attribute the patches write, before, inside without() and after.
WITHOUT_EACH_PATCH = """
import json
from bot import rasa_patches

def raw(patch):
    out = []
    for target in patch.writes:
        owner, name = rasa_patches._owner_and_name(target)
        out.append(id(vars(owner).get(name)))
    return out

before = {}
refused = ""
try:
    with rasa_patches.without(rasa_patches.PATCHES[0]):
        pass
except ValueError as error:
    refused = str(error)
for k, patch in enumerate(rasa_patches.PATCHES):  # one by one: what each one found when installed
    before[patch.what] = raw(patch)
    rasa_patches.install(rasa_patches.PATCHES[:k + 1])
installed = {p.what: raw(p) for p in rasa_patches.PATCHES}
all_installed = {t: v for p in rasa_patches.PATCHES for t, v in zip(p.writes, raw(p))}

def everything_but(patch):
    return {t: v for p in rasa_patches.PATCHES for t, v in zip(p.writes, raw(p)) if t not in patch.writes}

def everything_installed_but(patch):
    return {t: v for t, v in all_installed.items() if t not in patch.writes}
inside, after, shared = {}, {}, {}
for patch in rasa_patches.PATCHES:
    taken_out = rasa_patches.without(patch)
    try:
        taken_out.__enter__()
    except ValueError as error:
        shared[patch.what] = str(error)
        continue
    inside[patch.what] = raw(patch)
    inside[patch.what + " (others)"] = everything_but(patch) == everything_installed_but(patch)
    taken_out.__exit__(None, None, None)
    after[patch.what] = raw(patch)
print(json.dumps({"before": before, "installed": installed, "inside": inside, "after": after, "refused": refused,
                  "shared": shared}))
"""


def test_without_puts_rasas_own_attributes_back_for_one_patch_and_then_the_patch_again():
    found = run_fresh(WITHOUT_EACH_PATCH)
    assert found["refused"].startswith("not installed")
    # Log masking wraps configure_app, and the endpoint sessions wrap that again: taking the
    # first out alone would take the second's wrapper with it, so it is refused.
    masking = rasa_patches.PATCHES[2]
    assert masking.writes == ("rasa.core.run:configure_app",)
    assert list(found["shared"]) == [masking.what]
    assert "bot/endpoint_sessions.py" in found["shared"][masking.what]
    for patch in rasa_patches.PATCHES:
        what = patch.what
        if patch is masking:
            continue
        assert found["before"][what] != found["installed"][what], what
        assert found["inside"][what] == found["before"][what], what
        assert found["inside"][what + " (others)"] is True, what
        assert found["after"][what] == found["installed"][what], what
