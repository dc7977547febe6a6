"""An event's class found in a table by its type name, not by walking every subclass of Event.

Rasa 3.6 turns each stored event back into an object with ``Event.resolve_by_type(type_name)``,
which lists all subclasses of ``Event`` (recursively, with ``inspect.isabstract`` on each) and
compares their names, for every event: every event of the tracker at each turn's read, and every
event an action returns. Under load that was about 7 % of the Rasa server's time per turn
(docs/benchmarks.md, "Profile under load").

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) replaces it with a
lookup in a table of type name → class. The table is built from the same list of subclasses, in
the same order (the first class with a name wins, as in Rasa's loop); a name not in it rebuilds
the table once (an Event subclass defined later is found) before Rasa's answer for an unknown
name: ``None`` for the old "topic", the default if given, else ``ValueError``.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

import rasa.shared.utils.common
from rasa.shared.core.events import Event

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.shared.core.events:Event.resolve_by_type",)

_by_name: Dict[str, Type[Event]] = {}


def _rebuild() -> None:
    table: Dict[str, Type[Event]] = {}
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        table.setdefault(cls.type_name, cls)
    _by_name.clear()
    _by_name.update(table)


def resolve_by_type(type_name: str, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
    """Drop-in for ``Event.resolve_by_type``: the class of the events named ``type_name``."""
    found = _by_name.get(type_name)
    if found is None:
        _rebuild()
        found = _by_name.get(type_name)
    if found is not None:
        return found
    if type_name == "topic":
        return None  # Rasa: backwards compatibility with old TopicSet events
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


def install() -> None:
    """Makes Rasa find event classes in the table."""
    Event.resolve_by_type = staticmethod(resolve_by_type)
