"""Validates action server responses with one compiled JSON-schema validator.

Rasa 3.6 checks every response of the action server against its response schema with
``jsonschema.validate(result, schema)``. That call first validates the *schema* itself against
the JSON-schema meta-schema, and the events schema is large: about 25 ms of CPU per custom
action call on this project's machines, more than half of a whole turn (see docs/benchmarks.md,
"Profile of a turn"). The schema is a constant, so checking it once is enough.

:func:`install` replaces ``RemoteAction._validate_action_result`` with a version that builds
the validator once (the schema is checked then) and validates each response with it: the same
rules, the same ``ValidationError`` (with Rasa's explanation appended) for a bad response.
``bot/__init__.py`` installs it, so it is active in every process that loads the assistant's
components, channels or event broker (the Rasa server loads all three).
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from typing import Any, Dict

logger = logging.getLogger(__name__)

# The method replaced below is the one of this Rasa release; another release may differ.
PATCHED_RASA_VERSION = "3.6.21"


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Drop-in for ``RemoteAction._validate_action_result`` with a compiled validator."""
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

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


def rasa_to_patch(skipped: str) -> bool:
    """True when this process has Rasa loaded and it is the release whose methods bot/ replaces.

    Only the Rasa server: it imports rasa before any of our modules, while the action server
    (rasa-sdk) and the handoff service never load Rasa and should not pay for importing it. For
    another Rasa release it logs what is ``skipped`` and returns False. Used by every install()
    of bot/ that replaces a Rasa method (this module, bot/action_fallback.py).
    """
    if "rasa" not in sys.modules:
        return False
    import rasa

    if rasa.__version__ != PATCHED_RASA_VERSION:
        logger.warning("rasa %s is not %s: %s", rasa.__version__, PATCHED_RASA_VERSION, skipped)
        return False
    return True


def install() -> bool:
    """Installs the compiled validator into Rasa (see :func:`rasa_to_patch`); True when it is active."""
    if not rasa_to_patch("action responses are validated the slow way"):
        return False
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction._validate_action_result, "__wrapped_by_helder__", False):
        return True
    validate_action_result.__wrapped_by_helder__ = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = validate_action_result
    return True
