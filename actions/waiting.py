"""While a case waits for a person: never a wall, and identity taken when it is given.

Rasa logs the customer's messages while the conversation is paused, and runs
``action_extract_slots`` (so the per-turn observer, ``action_validate_slot_mappings``) for each, but no policy. From there:

- the first message after the bot's promise gets one short acknowledgement with the wait (or
  the reply-by time) as the handoff service says it now; messages within the next few minutes
  stay quiet (the agent sees them all live);
- identity details given while waiting are verified like anywhere else and added to the case,
  so the agent's card shows who the customer is before they pick it up;
- once an agent owns the conversation the bot says nothing at all.
"""

from __future__ import annotations

import time
from typing import List

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import is_identified, language
from actions.escalation import context_packet
from actions.handoff_client import open_case
from actions.identification import identity_given, verify_identity
from actions.identifier_parsing import belgian_postcode_in
from bot import turn_observation
from contract.dates import honest_wait

# Entities that identify a customer (the regexes of data/nlu/entities.yml).
IDENTITY_ENTITIES = ("customer_number", "email", "phone_number", "postcode")
# After an acknowledgement, further messages stay quiet this long.
QUIET_SECONDS = 300.0
_ACK_RESPONSES = {"utter_handoff_queued": "utter_waiting_ack_queued",
                  "utter_handoff_no_agents": "utter_waiting_ack_no_agents"}


def waiting_for_agent(tracker: Tracker) -> bool:
    """True while the conversation is paused with a case no agent has claimed yet."""
    return turn_observation.waiting_for_agent(tracker.is_paused(), tracker.slots)


def _identity_in_message(tracker: Tracker) -> bool:
    """True when this message itself carries identity details (not only earlier ones)."""
    latest = tracker.latest_message or {}
    return any(e.get("entity") in IDENTITY_ENTITIES for e in latest.get("entities") or []) \
        or bool(belgian_postcode_in(latest.get("text")))


async def while_waiting(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """Events (and messages) for a customer message that arrives while the case waits."""
    if not waiting_for_agent(tracker):
        return []
    events: List[EventType] = []
    tell_case = False
    if not is_identified(tracker) and _identity_in_message(tracker):
        # The observer runs after the slot mappings: this message's details are in the slots.
        identifier, postcode = identity_given(tracker)
        if identifier and postcode:
            slots = await verify_identity(dispatcher, tracker, identifier, postcode)
            tracker.slots.update(slots)
            events += [SlotSet(slot, value) for slot, value in slots.items()]
            tell_case = bool(slots.get("customer_id"))
        elif identifier or postcode:
            events += [SlotSet("identifier", identifier), SlotSet("postcode", postcode)]
            dispatcher.utter_message(response="utter_ask_postcode" if identifier else "utter_ask_identifier")
    last_ack = tracker.get_slot("waiting_ack_at")
    acknowledge = not isinstance(last_ack, (int, float)) or time.time() - last_ack > QUIET_SECONDS
    if not (acknowledge or tell_case):
        return events
    # Re-sending the packet returns the case's wait as it is now, and adds what the bot learnt
    # (the identity) to the agent's card.
    case = await open_case(context_packet(tracker, tracker.get_slot("handoff_reason") or "request"))
    if acknowledge:
        if case is not None:
            wait = honest_wait(case, language(tracker))
            dispatcher.utter_message(response=_ACK_RESPONSES[wait.pop("response")], **wait)
        else:
            dispatcher.utter_message(response="utter_waiting_ack")
        events.append(SlotSet("waiting_ack_at", time.time()))
    return events
