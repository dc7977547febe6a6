"""Validates action server responses, and the events posted to the HTTP API, with compiled JSON-schema validators.

Rasa 3.6 checks every response of the action server against its response schema with
``jsonschema.validate(result, schema)``. That call first validates the *schema* itself against
the JSON-schema meta-schema, and the events schema is large: about 25 ms of CPU per custom
action call on this project's machines, more than half of a whole turn (see docs/benchmarks.md,
"Profile of a turn"). The schema is a constant, so checking it once is enough. The HTTP API does
the same with every list of events posted to it (``rasa.server.validate_events_in_request_body``:
``POST /conversations/<id>/tracker/events`` and the other routes that take events), which is how
the handoff service delivers an agent's line and pauses or resumes the bot: measured on the
handoff benchmark's path (scripts/bench_handoff.py), about four fifths of the Rasa server's time
for one agent line went to checking the schema.

:func:`install` replaces ``RemoteAction._validate_action_result`` and
``rasa.server.validate_events_in_request_body`` with versions that build their validators once
(the schemas are checked then) and validate each response or request body with them: the same
rules, the same errors (a ``ValidationError`` with Rasa's explanation appended for a bad
response; Rasa's 400 ``ErrorResponse`` for bad events in a request).

Each event must match exactly one of about thirty event schemas (``oneOf``), one per event type,
each pinning ``event`` to its type name; checking an event against all of them cost about 8 % of
a turn's time in the Rasa server under load (docs/benchmarks.md, "Profile under load"). A valid
response is therefore checked as: the response without its events' item schema, then each event
against the common part and the one schema of its own type only, which is the same rule when
every type name has exactly one schema (checked when the validators are built; otherwise every
response takes the full check). Events posted to the API are checked the same way. Anything that
does not pass takes the full check, so bad input gets exactly Rasa's error.
The Rasa server installs it at start (bot/rasa_patches.py, after checking the Rasa release and
that :data:`REPLACES` exists).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from http import HTTPStatus
from typing import Any, Dict, Optional

import rasa.server
from jsonschema import ValidationError, validators
from jsonschema.exceptions import best_match
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.utils.schemas.events import EVENTS_SCHEMA

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.core.actions.action:RemoteAction._validate_action_result",
            "rasa.server:validate_events_in_request_body")


def _compiled(schema: Dict[str, Any]) -> Any:
    """A validator of ``schema``, the schema checked against its meta-schema once, now."""
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@lru_cache(maxsize=1)
def _validator() -> Any:
    return _compiled(RemoteAction.action_response_format_spec())


@lru_cache(maxsize=1)
def _events_validator() -> Any:
    return _compiled(EVENTS_SCHEMA)


@lru_cache(maxsize=1)
def _by_event_type() -> Optional[Dict[str, Any]]:
    """Event type name → the validator of the common part and that type's one schema, or None
    when the events schema is not one schema per type name."""
    items = EVENTS_SCHEMA["items"]
    try:
        options = items["oneOf"]
        names = [option["properties"]["event"]["const"] for option in options]
    except (KeyError, TypeError):
        return None
    if len(set(names)) != len(names):
        return None
    cls = validators.validator_for(EVENTS_SCHEMA)
    common = {key: value for key, value in items.items() if key != "oneOf"}
    return {name: cls({"allOf": [common, option]}) for name, option in zip(names, options)}


@lru_cache(maxsize=1)
def _response_without_events() -> Optional[Any]:
    """The response's validator without the events' item schema, or None when the response's
    events are not the events schema (then every response takes the full check)."""
    schema = RemoteAction.action_response_format_spec()
    if schema.get("properties", {}).get("events") != EVENTS_SCHEMA:
        return None
    outer = copy.deepcopy(schema)
    outer["properties"]["events"]["items"] = {}
    return validators.validator_for(schema)(outer)


def _events_valid_by_type(events: Any) -> bool:
    """True when ``events`` is a valid list of events, checked per event type; False: not known to be valid."""
    by_type = _by_event_type()
    if by_type is None or not isinstance(events, list):
        return False
    for event in events:
        validator = by_type.get(str(event.get("event"))) if isinstance(event, dict) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def _valid_by_event_type(result: Any) -> bool:
    """True when ``result`` is valid, checked per event type; False: not known to be valid."""
    outer = _response_without_events()
    if outer is None or not outer.is_valid(result):
        return False
    return _events_valid_by_type(result.get("events") or [])


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


def validate_events_in_request_body(request: Any) -> None:
    """Drop-in for ``rasa.server.validate_events_in_request_body`` with a compiled validator.

    Raises:
        rasa.server.ErrorResponse: 400, with Rasa's message, when the body is not valid events.
    """
    events = request.json if isinstance(request.json, list) else [request.json]
    if _events_valid_by_type(events):
        return
    error = best_match(_events_validator().iter_errors(events))
    if error is None:
        return
    raise rasa.server.ErrorResponse(
        HTTPStatus.BAD_REQUEST,
        "BadRequest",
        f"Failed to validate the events format. "
        f"For more information about the format visit the docs. Error: {error}",
        help_url=DOCS_BASE_URL + "/pages/http-api",
    ) from error


def install() -> None:
    """Makes Rasa validate action server responses and posted events with the compiled validators."""
    RemoteAction._validate_action_result = validate_action_result
    rasa.server.validate_events_in_request_body = validate_events_in_request_body
