"""Why a conversation goes to a person: the ``reason`` of a case and of the ``handoff_reason`` slot.

The bot escalates for the first seven; the handoff service adds :attr:`EscalationReason.TAKEOVER`
when an agent takes over a conversation the bot is still handling. The values are what travels
(JSON, slots, Redis); the bot has an ``utter_handoff_<reason>`` response for each of its own.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Tuple


class EscalationReason(str, Enum):
    """A reason for a case; compares equal to its value and prints as it."""

    REQUEST = "request"
    COMPLEXITY = "complexity"
    SECOND_MISS = "second_miss"
    FRUSTRATION = "frustration"
    IDENTIFICATION_FAILED = "identification_failed"
    NO_AUTOMATION = "no_automation"
    BACKEND_FAILURE = "backend_failure"
    TAKEOVER = "takeover"

    def __str__(self) -> str:
        return self.value


#: The reasons the bot escalates for (every one but the service's takeover), as their values.
BOT_REASONS: Tuple[str, ...] = tuple(r.value for r in EscalationReason if r is not EscalationReason.TAKEOVER)


def bot_reason(value: Any, default: str = EscalationReason.REQUEST.value) -> str:
    """``value`` when it is one of :data:`BOT_REASONS`, else ``default`` (a person was asked for)."""
    return value if value in BOT_REASONS else default
