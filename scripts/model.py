"""Trains a model only when none matches the current data, domain, config and NLU code.

The model file is named after a fingerprint of everything that shapes it, so "is there a
model for this?" is one file lookup, and an old model never hides a changed component.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
INPUTS = ("config.yml", "domain", "data", "bot/nlu", "bot/language.py", "bot/lemmas.py", "requirements/bot-lock.txt")


def fingerprint() -> str:
    """A short hash of every file that influences training."""
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        files = (sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".py", ".txt"))
                 if path.is_dir() else [path])
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path() -> Path:
    """Where the model for the current inputs is (or will be)."""
    return MODELS / f"helder-{fingerprint()}.tar.gz"


def ensure_model(quiet: bool = False) -> Path:
    """The model for the current inputs, training it first if it does not exist.

    ``KLANTCONTACT_MODEL=/path/to/model.tar.gz`` uses that model instead (no training), e.g. to
    run or test a model trained with another config.
    """
    override = os.environ.get("KLANTCONTACT_MODEL")
    if override:
        chosen = Path(override)
        if not chosen.is_file():
            raise SystemExit(f"KLANTCONTACT_MODEL={override} is not a model file")
        return chosen.resolve()
    path = model_path()
    if path.exists():
        return path
    MODELS.mkdir(exist_ok=True)
    if not quiet:
        print(f"training {path.name} (about 6 minutes on 2 cores; less when only rules or responses changed)...", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RASA_TELEMETRY_ENABLED="false")
    subprocess.run(
        [sys.executable, "-m", "rasa", "train", "--config", "config.yml", "--domain", "domain",
         "--data", "data", "--out", str(MODELS), "--fixed-model-name", path.name[: -len(".tar.gz")]],
        cwd=ROOT, env=env, check=True,
    )
    if not path.exists():
        raise RuntimeError(f"training finished but {path} is missing")
    # Models of older data are dead weight (about 20 MB each): keep only the current one.
    for old in MODELS.glob("helder-*.tar.gz"):
        if old != path:
            old.unlink()
    return path


if __name__ == "__main__":
    print(ensure_model())
