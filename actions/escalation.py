"""Handing the conversation to a person, with everything the bot knows, and taking it back.

The context packet is what the agent sees (service rule 4). The handoff service answers with
the honest wait: a queue position and estimate, or "nobody available" with a reply-by time the
bot promises. The conversation is then paused: the bot stays silent while a person owns it.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import disclose_once, language
from actions.handoff_client import open_case
from contract.dates import honest_wait
from contract.packet import packet_from_tracker
from contract.reasons import bot_reason

logger = logging.getLogger(__name__)


def context_packet(tracker: Tracker, reason: str) -> Dict[str, Any]:
    """Everything an agent needs to continue without asking the customer again (the contract's
    packet, built from the tracker as the handoff service builds it for a takeover)."""
    return packet_from_tracker(tracker.sender_id, tracker.current_state(), reason)


class ActionHandoff(Action):
    """Tells the customer honestly what happens, hands over the context, pauses the bot."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        reason = "request" if intent == "request_human" else tracker.get_slot("handoff_reason")
        reason = bot_reason(reason)
        events: List[EventType] = disclose_once(dispatcher, tracker)
        case = await open_case(context_packet(tracker, reason))
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
