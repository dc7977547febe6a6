"""The context packet a case is opened with: everything an agent needs to continue without
asking the customer again (service rule 4), built from a tracker's JSON.

Rasa's tracker JSON (``GET /conversations/<id>/tracker``, and rasa-sdk's
``Tracker.current_state()``) has the slots, the latest message, the events and the latest
input channel. The action server builds the packet when the bot escalates (actions/escalation.py),
the handoff service when an agent takes over or a pending request is opened
(handoff/workflow.py, handoff/pending.py): both with :func:`packet_from_tracker`, so a case
carries the same fields however it was opened. handoff/API.md describes the fields.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from contract import slots
from contract.reasons import EscalationReason


def transcript(events: Any) -> List[Dict[str, Any]]:
    """Customer and bot lines of the conversation, oldest first.

    An agent's line (a bot utterance with ``metadata.agent_id``) is left out: the handoff
    service has it already, as the agent's.
    """
    return [
        {"from": "customer" if event["event"] == "user" else "bot", "text": event["text"],
         "at": event.get("timestamp")}
        for event in events or []
        if isinstance(event, dict) and event.get("event") in ("user", "bot") and event.get("text")
        and not ((event.get("metadata") or {}).get("agent_id"))
    ]


def packet_from_tracker(conversation_id: str, tracker: Mapping[str, Any],
                        reason: str = EscalationReason.TAKEOVER.value) -> Dict[str, Any]:
    """The context packet of a conversation from its tracker's JSON, for a case opened for ``reason``."""
    values = tracker.get("slots") or {}
    latest = tracker.get("latest_message") or {}
    return {
        "conversation_id": conversation_id,
        "reason": str(reason),
        "language": slots.reply_language(values.get(slots.LANGUAGE)),
        "channel": tracker.get("latest_input_channel"),
        "identity": {
            "customer_id": values.get(slots.CUSTOMER_ID),
            "name": values.get(slots.CUSTOMER_NAME),
            "verified_by": values.get(slots.IDENTITY_VERIFIED_BY),
            "verified_at": values.get(slots.IDENTITY_VERIFIED_AT),
        },
        "problem_description": values.get(slots.PROBLEM_DESCRIPTION),
        "intent": values.get(slots.PROBLEM_INTENT) or (latest.get("intent") or {}).get("name"),
        "entities": {slot: values[slot] for slot in slots.ENTITY_SLOTS if values.get(slot)},
        "bot_attempts": list(values.get(slots.BOT_ATTEMPTS) or []),
        "transcript": transcript(tracker.get("events")),
    }
