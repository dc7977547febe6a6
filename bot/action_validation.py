"""Validates action server responses with one compiled JSON-schema validator.

Rasa 3.6 checks every response of the action server against its response schema with
``jsonschema.validate(result, schema)``. That call first validates the *schema* itself against
the JSON-schema meta-schema, and the events schema is large: about 25 ms of CPU per custom
action call on this project's machines, more than half of a whole turn (see docs/benchmarks.md,
"Profile of a turn"). The schema is a constant, so checking it once is enough.

:func:`install` replaces ``RemoteAction._validate_action_result`` with a version that builds
the validator once (the schema is checked then) and validates each response with it: the same
rules, the same ``ValidationError`` (with Rasa's explanation appended) for a bad response.

Each event of a response must match exactly one of about thirty event schemas (``oneOf``), one
per event type, each pinning ``event`` to its type name; checking an event against all of them
cost about 8 % of a turn's time in the Rasa server under load (docs/benchmarks.md, "Profile
under load"). A valid response is therefore checked as: the response without its events' item
schema, then each event against the common part and the one schema of its own type only, which
is the same rule when every type name has exactly one schema (checked when the validators are
built; otherwise every response takes the full check). Anything that does not pass takes the
full check, so a bad response gets exactly Rasa's error.
The Rasa server installs it at start (bot/rasa_patches.py, after checking the Rasa release and
that :data:`REPLACES` exists).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Dict, Optional, Tuple

from jsonschema import ValidationError, validators
from jsonschema.exceptions import best_match
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.core.actions.action:RemoteAction._validate_action_result",)


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@lru_cache(maxsize=1)
def _per_event_type() -> Optional[Tuple[Any, Dict[str, Any]]]:
    """(the response's validator without the events' item schema, event type → that type's
    validator), or None when the events schema is not one schema per type name."""
    schema = RemoteAction.action_response_format_spec()
    try:
        items = schema["properties"]["events"]["items"]
        options = items["oneOf"]
        names = [option["properties"]["event"]["const"] for option in options]
    except (KeyError, TypeError):
        return None
    if len(set(names)) != len(names):
        return None
    cls = validators.validator_for(schema)
    outer = copy.deepcopy(schema)
    outer["properties"]["events"]["items"] = {}
    common = {key: value for key, value in items.items() if key != "oneOf"}
    return cls(outer), {name: cls({"allOf": [common, option]}) for name, option in zip(names, options)}


def _valid_by_event_type(result: Any) -> bool:
    """True when ``result`` is valid, checked per event type; False: not known to be valid."""
    split = _per_event_type()
    if split is None:
        return False
    outer, by_type = split
    if not outer.is_valid(result):
        return False
    for event in result.get("events") or []:
        validator = by_type.get(str(event.get("event"))) if isinstance(event, dict) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Drop-in for ``RemoteAction._validate_action_result`` with a compiled validator."""
    if _valid_by_event_type(result):
        return True
    error = best_match(_validator().iter_errors(result))
    if error is None:
        return True
    if not isinstance(error, ValidationError):  # pragma: no cover - best_match returns these
        raise error
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    """Makes Rasa validate action server responses with the compiled validator."""
    RemoteAction._validate_action_result = validate_action_result
