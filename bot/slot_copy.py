"""Slots copied without the ``copy`` module's general machinery.

Rasa 3.6 makes a new ``DialogueStateTracker`` many times a turn (reading the conversation,
``init_copy`` for every prior state the policies look at, travelling back in time for the
tracker store), and each one starts with ``copy.copy`` of every slot in the domain (44 here).
``copy.copy`` of a plain object goes through ``__reduce_ex__`` and ``copyreg``: about 2.6 µs a
slot, 114 µs a tracker; in a sequential profile of the benchmark's conversations that dict
comprehension was about a tenth of the Rasa server's busy time (docs/benchmarks.md).

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) gives Rasa's
``Slot`` a ``__copy__``, which ``copy.copy`` calls first: a new object of the same class with
the same attributes, which is exactly what ``copy.copy`` made of a slot (the slot classes define
no ``__getstate__``, ``__setstate__`` or ``__reduce__`` of their own: checked at install); 24 µs
a tracker.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from rasa.shared.core.slots import Slot

#: What :func:`install` changes in Rasa (the base class of every slot type).
REPLACES = ("rasa.shared.core.slots:Slot",)
#: The attribute it writes (Rasa's Slot has none: ``copy.copy`` falls back to ``__reduce_ex__``).
SETS = ("rasa.shared.core.slots:Slot.__copy__",)

_OWN_COPYING = ("__copy__", "__getstate__", "__setstate__", "__reduce__", "__reduce_ex__")


def copy_slot(self: Slot) -> Slot:
    """What ``copy.copy`` makes of a slot: a new instance of its class sharing its attribute values."""
    new = object.__new__(type(self))
    new.__dict__.update(self.__dict__)
    return new


def _classes(cls: type) -> Tuple[type, ...]:
    subclasses: List[type] = cls.__subclasses__()
    return (cls, *(c for sub in subclasses for c in _classes(sub)))


def copies_its_own_way() -> Tuple[str, ...]:
    """The slot classes that copy or pickle themselves (then this patch would change what a copy is)."""
    return tuple(f"{cls.__module__}.{cls.__qualname__}.{name}" for cls in _classes(Slot) for name in _OWN_COPYING
                 if name in vars(cls) and vars(cls)[name] is not copy_slot)


def install() -> None:
    """Gives every slot the plain ``__copy__``; refuses when a slot class copies its own way."""
    own: Any = copies_its_own_way()
    if own:
        raise RuntimeError(f"bot/slot_copy.py: these slot classes copy themselves: {', '.join(own)}")
    setattr(Slot, "__copy__", copy_slot)  # noqa: B010 - Slot has no __copy__ to type against
