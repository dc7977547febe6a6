"""Every change bot/ makes to Rasa's behaviour, installed in one place when the Rasa server starts.

:data:`PATCHES`, each with what it replaces in Rasa:

- action-server responses, and the events posted to the HTTP API (an agent's line, pause, resume),
  validated with compiled JSON schemas (bot/action_validation.py);
- an action server that is down or slow: a time limit per call, one apology and a person instead
  of silence, no second wait (bot/action_server_down.py);
- personal data masked in every log handler of the server (contract/log_masking.py), put on the
  handlers when the server starts, once Rasa, Sanic and ``--log-file`` have made them;
- one kept-alive HTTP session per endpoint (the action server) instead of a new session and TCP
  connection for every call (bot/endpoint_sessions.py);
- an event's class looked up in a table by its type name instead of a walk over every subclass
  of ``Event`` for each event read (bot/event_lookup.py);
- the NLU of each message run in one thread beside the event loop, which meanwhile serves the
  other customers' turns (bot/nlu_thread.py);
- the domain sent to the form validators without its responses, which the action server never
  reads (bot/domain_for_actions.py);
- slots copied with a plain ``__copy__`` instead of ``copy``'s general machinery, for the many
  trackers Rasa makes a turn (bot/slot_copy.py);
- the per-turn observer's language, register and miss count decided in the Rasa server, and the
  action server's observer called only for a channel identity to look up or a case waiting for
  a person (bot/local_observer.py, bot/turn_observation.py);
- the rule policy's search for the rules that fit a conversation stopped once it is past the
  longest remaining rule, instead of walking on to the conversation's start (bot/rule_matching.py);
- the model graph (the NLU pipeline, the policies) run node after node in an order worked out
  once per set of targets, instead of by dask's scheduler on every run (bot/graph_runner.py);
- with several worker processes, each listening on a socket of its own (SO_REUSEPORT), so the
  kernel spreads the connections over them instead of the first to wake taking them all
  (bot/reuse_port.py).

:data:`RELIED_ON` lists what bot/ uses of Rasa without replacing it and that is not public API:
the tracker store's one-read save (bot/tracker_store.py).

:func:`install` checks the Rasa release once and then that everything the patches replace and
the tracker store relies on exists (bot/rasa_guard.py); only then it installs every patch. On
any other Rasa release, or with anything missing, it raises ``bot.rasa_guard.UnsupportedRasa``
and installs nothing. The Rasa server's entry point (bot/server.py) calls it before Rasa starts;
importing ``bot`` or any module of it installs nothing.

:func:`without` takes one installed patch out for a while and puts it back (Rasa's own attributes
meanwhile): scripts/bench_profile.py measures what each patch saves that way, in the same run.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import rasa

from bot import (action_server_down, action_validation, domain_for_actions, endpoint_sessions, event_lookup,
                 graph_runner, local_observer, nlu_thread, reuse_port, rule_matching, server_listeners, slot_copy,
                 tracker_store)
from bot.rasa_guard import check_attribute, check_version
from contract import log_masking


@dataclass(frozen=True)
class Patch:
    """One change to Rasa: what it is for, the Rasa attributes it replaces, how it is installed.

    ``sets`` are the attributes the installation writes, when not the ``replaces`` (a patch that
    adds an attribute Rasa does not have: it replaces what Python would otherwise look up).
    """

    what: str
    replaces: Tuple[str, ...]
    install: Callable[[], None]
    sets: Tuple[str, ...] = ()

    @property
    def writes(self) -> Tuple[str, ...]:
        return self.sets or self.replaces


def _mask_log_handlers_at_server_start() -> None:
    """Every Sanic app Rasa configures masks personal data in all log handlers as it starts."""
    server_listeners.on_every_server(_mask_log_handlers, "before_server_start")


def _mask_log_handlers(app: Any, loop: Any) -> None:
    """A Sanic listener: the masking filter on every log handler that exists now."""
    log_masking.install()


PATCHES: Tuple[Patch, ...] = (
    Patch("action-server responses and posted events validated with compiled schemas (bot/action_validation.py)",
          action_validation.REPLACES, action_validation.install),
    Patch("an action server that is down or slow gets an apology and a person (bot/action_server_down.py)",
          action_server_down.REPLACES, action_server_down.install),
    Patch("personal data masked in the server's logs (contract/log_masking.py)",
          ("rasa.core.run:configure_app",), _mask_log_handlers_at_server_start),
    Patch("one kept-alive HTTP session per endpoint, not one per call (bot/endpoint_sessions.py)",
          endpoint_sessions.REPLACES, endpoint_sessions.install),
    Patch("event classes found in a table by type name (bot/event_lookup.py)",
          event_lookup.REPLACES, event_lookup.install),
    Patch("the NLU of each message in its own thread, beside the event loop (bot/nlu_thread.py)",
          nlu_thread.REPLACES, nlu_thread.install),
    Patch("the domain sent to the action server without its responses (bot/domain_for_actions.py)",
          domain_for_actions.REPLACES, domain_for_actions.install),
    Patch("slots copied with a plain __copy__ (bot/slot_copy.py)", slot_copy.REPLACES, slot_copy.install,
          sets=slot_copy.SETS),
    Patch("the per-turn observer's own part run in the Rasa server, the action server called only when the turn "
          "needs it (bot/local_observer.py)", local_observer.REPLACES, local_observer.install),
    Patch("the rule policy's walk over the states ends past the longest remaining rule (bot/rule_matching.py)",
          rule_matching.REPLACES, rule_matching.install),
    Patch("the model graph run node after node in an order worked out once, not by dask's scheduler on every run "
          "(bot/graph_runner.py)", graph_runner.REPLACES, graph_runner.install),
    Patch("several worker processes each listening on a socket of their own, connections spread by the kernel "
          "(bot/reuse_port.py)", reuse_port.REPLACES, reuse_port.install),
)

RELIED_ON: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("the tracker store's one-read save (bot/tracker_store.py)", tracker_store.RELIES_ON),
    ("the NLU thread (bot/nlu_thread.py)", nlu_thread.RELIES_ON),
)

_installed: List[Patch] = []
_MISSING = object()
#: What each installed patch's attributes held before it was installed (owner, name, raw value).
_originals: Dict[Patch, List[Tuple[Any, str, Any]]] = {}


def _owner_and_name(target: str) -> Tuple[Any, str]:
    """The object holding ``target`` ("module:Qualified.name") and the attribute's name."""
    module_name, _, qualified_name = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = qualified_name.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _held(patch: Patch) -> List[Tuple[Any, str, Any]]:
    """The raw values (``vars``, so static methods stay static) of what ``patch`` writes, now."""
    held = []
    for target in patch.writes:
        owner, name = _owner_and_name(target)
        held.append((owner, name, vars(owner).get(name, _MISSING)))
    return held


def _put(held: List[Tuple[Any, str, Any]]) -> None:
    for owner, name, value in held:
        if value is _MISSING:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, value)


@contextlib.contextmanager
def without(patch: Patch) -> Iterator[None]:
    """Rasa's own attributes instead of ``patch``'s inside the block; the patch is back after it.

    Raises:
        ValueError: ``patch`` is not installed, or a patch installed after it wrote the same
            attribute (Rasa's own value would take that one out too).
    """
    if patch not in _installed:
        raise ValueError(f"not installed: {patch.what}")
    later = [p.what for p in _installed[_installed.index(patch) + 1:] if set(p.writes) & set(patch.writes)]
    if later:
        raise ValueError(f"{patch.what} cannot be taken out alone: {'; '.join(later)} wrote over it")
    patched = _held(patch)
    _put(_originals[patch])
    try:
        yield
    finally:
        _put(patched)


def install(patches: Sequence[Patch] = PATCHES) -> None:
    """Checks this Rasa, then installs every patch not installed yet; see the module docstring.

    Raises:
        UnsupportedRasa: another Rasa release, or one of the attributes is missing (nothing is
            installed then).
    """
    check_version(rasa.__version__)
    for patch in patches:
        for target in patch.replaces:
            check_attribute(target, needed_for=patch.what)
    for needed_for, targets in RELIED_ON:
        for target in targets:
            check_attribute(target, needed_for=needed_for)
    for patch in patches:
        if patch not in _installed:
            _originals[patch] = _held(patch)
            patch.install()
            _installed.append(patch)


def installed() -> Tuple[str, ...]:
    """What the patches installed in this process are for."""
    return tuple(patch.what for patch in _installed)
