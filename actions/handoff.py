"""Handing the conversation to a person, with everything the bot knows, and taking it back.

The context packet is what the agent sees (service rule 4). The handoff service answers with
the honest wait: a queue position and estimate, or "nobody available" with a reply-by time the
bot promises. The conversation is then paused: the bot stays silent while a person owns it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Text

import requests
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import disclose_once, language
from actions.metrics import observe_handoff_call
from bot.dates import honest_wait

logger = logging.getLogger(__name__)

HANDOFF_TIMEOUT_SECONDS = 5.0

HANDOFF_REASONS = (
    "request",
    "complexity",
    "second_miss",
    "frustration",
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


def open_case(packet: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Opens (or finds) the case at the handoff service; None when the service cannot be reached."""
    url = os.environ.get("HANDOFF_URL", "http://127.0.0.1:8000").rstrip("/") + "/api/cases"
    token = os.environ.get("HANDOFF_API_TOKEN", "")
    started, ok = time.perf_counter(), False
    try:
        response = requests.post(url, json=packet, headers={"Authorization": f"Bearer {token}"},
                                 timeout=HANDOFF_TIMEOUT_SECONDS)
        response.raise_for_status()
        answer, ok = response.json(), True
        return answer
    except (requests.RequestException, ValueError) as error:
        logger.error("handoff service unavailable for %s: %s", packet.get("conversation_id"), error)
        return None
    finally:
        observe_handoff_call(time.perf_counter() - started, ok)


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
        case = open_case(context_packet(tracker, reason))
        events += [SlotSet("handoff_reason", reason), SlotSet("requested_slot", None), ActiveLoop(None)]
        if case is None:
            # Nobody can take over right now: say so, keep the bot available meanwhile, and leave
            # the request on the event stream: the handoff service opens it once it is back
            # (handoff/pending.py).
            dispatcher.utter_message(response="utter_handoff_unavailable")
            return events + [SlotSet("handoff_pending", reason)]
        dispatcher.utter_message(response=f"utter_handoff_{reason}")
        wait = honest_wait(case, language(tracker))
        dispatcher.utter_message(response=wait.pop("response"), **wait)
        logger.info("handoff of %s: case %s (%s)", tracker.sender_id, case.get("case_id"), reason)
        # A new wait: nobody owns it yet, and the customer's next message gets one acknowledgement
        # (actions/waiting.py).
        events += [SlotSet("agent_name", None), SlotSet("waiting_ack_at", None)]
        return events + [SlotSet("handoff_pending", None), SlotSet("handoff_case_id", case.get("case_id")),
                         *(SlotSet(name, value) for name, value in wait.items()), ConversationPaused()]


class ActionHandback(Action):
    """Runs when an agent hands the conversation back: the bot continues with every slot intact."""

    def name(self) -> Text:
        return "action_handback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_handback")
        return [SlotSet("consecutive_misses", 0.0), SlotSet("next_step", "done"), SlotSet("handoff_reason", None),
                SlotSet("agent_name", None),
                SlotSet("service_trouble", None), SlotSet("handoff_pending", None)]


class ActionAgentJoined(Action):
    """Run by the handoff service when an agent claims: tells the customer who joined.

    The service sets ``agent_name`` just before; the message carries ``event: agent_joined``
    in its metadata so the web widget can show it as a notice.
    """

    def name(self) -> Text:
        return "action_agent_joined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        name = tracker.get_slot("agent_name") or ""
        dispatcher.utter_message(response="utter_agent_joined", agent_name=name, event="agent_joined")
        return []
