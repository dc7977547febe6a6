"""Validates action server responses with one compiled JSON-schema validator.

Rasa 3.6 checks every response of the action server against its response schema with
``jsonschema.validate(result, schema)``. That call first validates the *schema* itself against
the JSON-schema meta-schema, and the events schema is large: about 25 ms of CPU per custom
action call on this project's machines, more than half of a whole turn (see docs/benchmarks.md,
"Profile of a turn"). The schema is a constant, so checking it once is enough.

:func:`install` replaces ``RemoteAction._validate_action_result`` with a version that builds
the validator once (the schema is checked then) and validates each response with it: the same
rules, the same ``ValidationError`` (with Rasa's explanation appended) for a bad response.
The Rasa server installs it at start (bot/rasa_patches.py, after checking the Rasa release and
that :data:`REPLACES` exists).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict

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


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Drop-in for ``RemoteAction._validate_action_result`` with a compiled validator."""
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
