"""Session start, the per-turn observer (language, register, misses) and the greeting."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    IDENTITY_SLOTS, acknowledge_once, answer_puzzled, latest_user_metadata, proactive_outage_notice,
)
from actions.identity_from_channel import identify_from_channel
from actions.waiting import while_waiting
from bot.language import channel_language_hint
from bot.turn_observation import CONSECUTIVE_MISSES, Turn, channel_may_vouch, settled_slots

# How long a verified identity is remembered across sessions (service rule 1).
IDENTITY_RETENTION_DAYS = float(os.environ.get("IDENTITY_RETENTION_DAYS", "30"))
_CARRIED_OVER = IDENTITY_SLOTS + ("language", "register")


class ActionSessionStart(Action):
    """Starts a session, keeping identity and language from the previous one.

    The customer is not asked who they are again when they come back within the retention
    period; the problem of the previous session is not carried over.
    """

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        verified_at = tracker.get_slot("identity_verified_at")
        identity_fresh = (
            isinstance(verified_at, (int, float))
            and time.time() - verified_at < IDENTITY_RETENTION_DAYS * 86400
        )
        for slot in _CARRIED_OVER:
            value = tracker.get_slot(slot)
            if value is None or (slot in IDENTITY_SLOTS and not identity_fresh):
                continue
            events.append(SlotSet(slot, value))
        metadata = tracker.get_slot("session_started_metadata")
        if metadata is not None:
            events.append(SlotSet("session_started_metadata", metadata))
        if tracker.get_slot("language") is None:
            hint = channel_language_hint(metadata if isinstance(metadata, dict) else None)
            if hint:
                events.append(SlotSet("language", hint))
        events.append(ActionExecuted("action_listen"))
        return events


async def identity_events(tracker: Tracker) -> List[EventType]:
    """Identity slots when the channel vouches for the customer (WhatsApp phone, shop token)."""
    found = await identify_from_channel(latest_user_metadata(tracker), tracker.get_latest_input_channel())
    if found is None:
        return []
    customer, method = found
    return [
        SlotSet("customer_id", customer.id),
        SlotSet("customer_name", customer.name),
        SlotSet("identity_verified_by", method),
        SlotSet("identity_verified_at", time.time()),
    ]


class ActionObserveTurn(Action):
    """Runs after every customer message, as Rasa's ``action_validate_slot_mappings``.

    ``action_extract_slots`` runs it after the slot mappings of every message, also while the
    conversation is paused for a person (when no policy runs), sees this message's slots, and
    (unlike a custom slot-mapping action, whose messages it drops) sends what it says: that is
    how a customer waiting for an agent is acknowledged and identified (actions/waiting.py).

    Keeps the reply language sticky (only a clear switch changes it), follows the customer's
    Dutch form of address, and resets the count of consecutive misunderstandings when a
    message was understood (bot/turn_observation.py: the Rasa server does this part itself
    on the turns that need nothing else of this observer, and does not call it then).
    """

    def name(self) -> Text:
        return "action_validate_slot_mappings"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        turn = observed_turn(tracker)
        settled = settled_slots(turn)
        misses = settled.pop(CONSECUTIVE_MISSES, None)
        events: List[EventType] = [SlotSet(slot, value) for slot, value in settled.items()]
        if channel_may_vouch(turn):
            events += await identity_events(tracker)
        # While a case waits for a person, no policy runs: acknowledge and take identity here.
        events += await while_waiting(dispatcher, tracker)
        if misses is not None:
            events.append(SlotSet(CONSECUTIVE_MISSES, misses))
        return events


def observed_turn(tracker: Tracker) -> Turn:
    """The latest message and the slots as bot/turn_observation.py reads them."""
    latest = tracker.latest_message or {}
    return Turn(
        text=latest.get("text") or "",
        intent=(latest.get("intent") or {}).get("name"),
        detection=latest.get("language_detection"),
        slots=tracker.slots,
        metadata=latest_user_metadata(tracker),
        input_channel=tracker.get_latest_input_channel(),
        paused=tracker.is_paused(),
    )


class ActionGreet(Action):
    """Greets: the first time with the disclosure, later briefly."""

    def name(self) -> Text:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("disclosed"):
            dispatcher.utter_message(response="utter_greet_again")
            return await proactive_outage_notice(dispatcher, tracker)
        dispatcher.utter_message(response="utter_greet")
        return [SlotSet("disclosed", True), *await proactive_outage_notice(dispatcher, tracker)]


class ActionAcknowledge(Action):
    """A bare "ok", "ja" or "nee" with nothing open: one short acknowledgement, then quiet.

    Nothing was asked, so it is no misunderstanding (no "could you rephrase?"); a second "ok"
    in a row gets no reply rather than the same sentence again.
    """

    def name(self) -> Text:
        return "action_acknowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if not answer_puzzled(dispatcher, tracker):
            acknowledge_once(dispatcher, tracker)
        return []
