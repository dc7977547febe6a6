"""Which Rasa release bot/ is written for, and the check that what it relies on is there.

bot/ replaces a few of Rasa's methods (bot/rasa_patches.py) and builds its tracker store on
private methods of Rasa's (bot/tracker_store.py). Those are written against, and tested with,
exactly the releases in :data:`SUPPORTED_RASA_VERSIONS`; on any other release they may be wrong
without a sound. :func:`require` refuses instead: it raises :class:`UnsupportedRasa`, naming the
release found and the ones supported, or the attribute that is missing.

An attribute is named ``"module:qualified.name"``, e.g.
``"rasa.core.actions.action:RemoteAction.run"``.
"""

from __future__ import annotations

import importlib
from typing import Iterable

#: The Rasa releases the patches and the tracker store are tested with (requirements/bot.txt).
SUPPORTED_RASA_VERSIONS = ("3.6.21",)


class UnsupportedRasa(RuntimeError):
    """The installed Rasa is not one bot/ supports, or lacks an attribute bot/ relies on."""


def check_version(found: str) -> None:
    """Raises :class:`UnsupportedRasa` unless ``found`` is a supported Rasa release."""
    if found not in SUPPORTED_RASA_VERSIONS:
        raise UnsupportedRasa(
            f"rasa {found} is installed, but bot/ changes Rasa's behaviour in ways written and tested "
            f"for rasa {' or '.join(SUPPORTED_RASA_VERSIONS)} only (bot/rasa_patches.py, "
            f"bot/tracker_store.py): install that release (requirements/bot.txt) or port the "
            f"changes and add the release to bot/rasa_guard.py's SUPPORTED_RASA_VERSIONS")


def check_attribute(target: str, needed_for: str) -> None:
    """Raises :class:`UnsupportedRasa` when ``target`` (``"module:qualified.name"``) is missing."""
    module_name, _, qualified_name = target.partition(":")
    try:
        owner = importlib.import_module(module_name)
        for name in qualified_name.split("."):
            owner = getattr(owner, name)
    except (ImportError, AttributeError) as error:
        raise UnsupportedRasa(f"{needed_for} needs {target}, which this Rasa does not have ({error})") from error


def require(targets: Iterable[str], needed_for: str) -> None:
    """Raises :class:`UnsupportedRasa` unless this Rasa is supported and has every one of ``targets``."""
    import rasa

    check_version(rasa.__version__)
    for target in targets:
        check_attribute(target, needed_for)
