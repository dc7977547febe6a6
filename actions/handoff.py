"""Handing the conversation to a person, with everything the bot knows.

The context packet is what the agent sees (service rule 4). Until the handoff service exists,
the packet is logged and the conversation is paused: the bot stays silent from here on.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import disclose_once, language

logger = logging.getLogger(__name__)

HANDOFF_REASONS = (
    "request",
    "complexity",
    "second_miss",
    "identification_failed",
    "no_automation",
    "backend_failure",
)


def transcript(tracker: Tracker) -> List[Dict[str, Any]]:
    """Customer and bot lines of the conversation, oldest first."""
    lines = []
    for event in tracker.events:
        if event.get("event") in ("user", "bot") and event.get("text"):
            lines.append(
                {"from": "customer" if event["event"] == "user" else "bot",
                 "text": event["text"], "at": event.get("timestamp")}
            )
    return lines


def context_packet(tracker: Tracker, reason: str) -> Dict[str, Any]:
    """Everything an agent needs to continue without asking the customer again."""
    latest = tracker.latest_message or {}
    return {
        "conversation_id": tracker.sender_id,
        "reason": reason,
        "language": language(tracker),
        "channel": tracker.get_latest_input_channel(),
        "identity": {
            "customer_id": tracker.get_slot("customer_id"),
            "name": tracker.get_slot("customer_name"),
            "verified_by": tracker.get_slot("identity_verified_by"),
            "verified_at": tracker.get_slot("identity_verified_at"),
        },
        "problem_description": tracker.get_slot("problem_description"),
        "intent": tracker.get_slot("problem_intent") or (latest.get("intent") or {}).get("name"),
        "entities": {
            slot: tracker.get_slot(slot)
            for slot in ("order_number", "product", "identifier", "postcode")
            if tracker.get_slot(slot)
        },
        "bot_attempts": list(tracker.get_slot("bot_attempts") or []),
        "transcript": transcript(tracker),
    }


class ActionHandoff(Action):
    """Tells the customer honestly what happens, hands over the context, pauses the bot."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        reason = "request" if intent == "request_human" else tracker.get_slot("handoff_reason")
        if reason not in HANDOFF_REASONS:
            reason = "request"
        events: List[EventType] = disclose_once(dispatcher, tracker)
        packet = context_packet(tracker, reason)
        logger.info("handoff %s", json.dumps(packet, ensure_ascii=False, default=str))
        dispatcher.utter_message(response=f"utter_handoff_{reason}")
        dispatcher.utter_message(response="utter_handoff_waiting")
        return events + [
            SlotSet("handoff_reason", reason),
            SlotSet("requested_slot", None),
            ActiveLoop(None),
            ConversationPaused(),
        ]
