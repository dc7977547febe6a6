"""Identification: the form that asks only for what is missing, once, and verifies it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.backend import BackendUnavailable, Outage, get_async_backend
from actions.cases import bot_tries_first
from actions.common import (
    CASE_INTENTS,
    CASES_WITHOUT_CONFIRMATION,
    CASES_WITHOUT_IDENTITY,
    COMPLEX_CASES,
    disclose_once,
    is_identified,
    latest_intent,
    no_answer,
    not_ours_aside,
    outage_notice_once,
    said_since_customer,
)
from actions.frustration import frustrated
from actions.identifier_parsing import belgian_postcode_in, parse_identifier, parse_postcode
from actions.knowledge import RETRIEVAL_INTENT, answer_article

logger = logging.getLogger(__name__)

# A wrong or unusable answer may happen once; the second goes to a person (service rule 5).
MAX_IDENTIFICATION_ATTEMPTS = 2
# "I don't know my customer number": the customer does not have it at hand (nl, Flemish, en).
DOES_NOT_HAVE_IT = re.compile(
    r"\b(?:weet|ken|vind)\b.{0,30}\b(?:niet|nie)\b|\bkwijt\b|geen (?:idee|flauw idee|klantnummer)|vergeten|"
    r"\b(?:niet|ni|nie) bij(?: de hand| me| mij)?\b|"
    r"\bdon'?t (?:know|have)\b|\bdo not (?:know|have)\b|no idea|forgot|can'?t find|cannot find|lost (?:it|my)|"
    r"not sure what (?:it|my)|haven'?t got|(?:don'?t|do not|can'?t|cannot) remember|herinner",
    re.IGNORECASE)
# How sure the classifier must be before a message answering an identity question replaces the
# case in hand with another one.
MIN_CONFIDENCE_NEW_PROBLEM = 0.95
NUMBER_WORD = re.compile(r"nummer|number|\bno\b|e-?mail|\b(?:it|het|dat|da)\b", re.IGNORECASE)


class ValidateIdentificationForm(FormValidationAction):
    """Validates the identifier and postcode and verifies them against the backend."""

    def name(self) -> Text:
        return "validate_identification_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Text]:
        # Nothing to ask once verified, once identification has failed (a person takes over), or
        # once the customer turned to something that needs no identity ("hoe laat zijn jullie open?").
        if (
            tracker.get_slot("customer_id")
            or tracker.get_slot("identification_failed")
            or tracker.get_slot("problem_intent") in CASES_WITHOUT_IDENTITY
        ):
            return []
        return domain_slots

    def validate_identifier(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> Dict[Text, Any]:
        identifier = parse_identifier(value if isinstance(value, str) else None)
        if identifier is None and fed_up(tracker):
            return {"identifier": None, "identification_failed": True, "handoff_reason": "frustration"}
        if identifier is None and no_answer(tracker, questions=not _optional(tracker)):
            # "ok", "thanks", "👍", "hoe lang nog?" while the question stands is no wrong answer: ask again.
            return {"identifier": None}
        if identifier is None and _offer_alternatives(tracker):
            # "Ik weet mijn klantnummer niet": no wrong answer; the other ways are said once.
            dispatcher.utter_message(response="utter_identifier_alternatives")
            return {"identifier": None}
        if identifier is None and problem_told(tracker):
            return take_problem_told(dispatcher, tracker, {"identifier": None})
        if identifier is None and (answer_fact_aside(dispatcher, tracker) or not_ours_aside(dispatcher, tracker)):
            return {"identifier": None}
        if identifier is None:
            return failed_attempt(dispatcher, tracker, "utter_invalid_identifier", {"identifier": None})
        # Both answers in one line: "51937204, 2000" (a Belgian postcode is no entity of its own).
        text = (tracker.latest_message or {}).get("text")
        postcode = None if tracker.get_slot("postcode") else belgian_postcode_in(text)
        return {"identifier": identifier.value, **({"postcode": postcode} if postcode else {})}

    def validate_postcode(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> Dict[Text, Any]:
        postcode = parse_postcode(value if isinstance(value, str) else None)
        if postcode is None and fed_up(tracker):
            return {"postcode": None, "identification_failed": True, "handoff_reason": "frustration"}
        if postcode is None and no_answer(tracker, questions=not _optional(tracker)):
            return {"postcode": None}
        if postcode is None and problem_told(tracker):
            return take_problem_told(dispatcher, tracker, {"postcode": None})
        if postcode is None and (answer_fact_aside(dispatcher, tracker) or not_ours_aside(dispatcher, tracker)):
            return {"postcode": None}
        if postcode is None:
            return failed_attempt(dispatcher, tracker, "utter_invalid_postcode", {"postcode": None})
        return {"postcode": postcode}

    async def get_validation_events(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[EventType]:
        """Validates the slots given in this turn, then verifies once both are known.

        Verification happens here rather than in a ``validate_<slot>`` method because the
        customer may give both in one message ("48213377, 3511 AB") or in either order.
        """
        events = await super().get_validation_events(dispatcher, tracker, domain)
        if judged_this_turn(tracker):
            # The details in this message were already checked (and refused) before the form
            # started ("m'n wasmachine is kapot, klantnummer …, postcode …"): the form re-reads
            # them from the message, but they count once. Ask again instead.
            tracker.slots.update({"identifier": None, "postcode": None})
            return events + [SlotSet("identifier", None), SlotSet("postcode", None)]
        identifier, postcode = tracker.get_slot("identifier"), tracker.get_slot("postcode")
        if (
            identifier
            and postcode
            and not tracker.get_slot("customer_id")
            and not tracker.get_slot("identification_failed")
        ):
            verified = await verify_identity(dispatcher, tracker, identifier, postcode)
            tracker.slots.update(verified)
            events += [SlotSet(slot, value) for slot, value in verified.items()]
        return events


def _optional(tracker: Tracker) -> bool:
    """Identity is asked once, and optional, before a complex case goes to a person: anything
    but an acknowledgement means the customer cannot or will not give it."""
    return tracker.get_slot("problem_intent") in COMPLEX_CASES


def _offer_alternatives(tracker: Tracker) -> bool:
    """The customer says they do not have the customer number ("ik weet mijn klantnummer niet",
    not "ik weet niet waar mijn pakket is"), and was not yet told that an e-mail address or phone
    number will do (a complex case goes to a person without it)."""
    text = (tracker.latest_message or {}).get("text") or ""
    if _optional(tracker) or not DOES_NOT_HAVE_IT.search(text):
        return False
    if problem_told(tracker) and not NUMBER_WORD.search(text):
        return False
    return not any((event.get("metadata") or {}).get("utter_action") == "utter_identifier_alternatives"
                   for event in tracker.events if event.get("event") == "bot")


def fed_up(tracker: Tracker) -> bool:
    """"For the third time this week!!!" while identity is asked: a person takes it from here
    (with the story so far), rather than another question or "that is not a customer number"."""
    return frustrated((tracker.latest_message or {}).get("text") or "")


def answer_fact_aside(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A question of fact asked while identity is asked ("wat is jullie retourbeleid eigenlijk?"):
    answered from the knowledge base when the article is sure, and the question stands."""
    return latest_intent(tracker) == RETRIEVAL_INTENT and answer_article(dispatcher, tracker.latest_message) is not None


def problem_told(tracker: Tracker) -> bool:
    """The answer to the identity question is the customer's problem ("waar blijft mijn pakket").

    Another problem than the one in hand must be clear: a misread question would otherwise
    replace the customer's case (a question about an invoice solved as a locked account).
    """
    intent = (tracker.latest_message or {}).get("intent") or {}
    if intent.get("name") not in CASE_INTENTS:
        return False
    in_hand = tracker.get_slot("problem_intent")
    if not in_hand or intent["name"] in (in_hand, "opening_hours"):  # the hours are answered beside the case
        return True
    return float(intent.get("confidence") or 0) >= MIN_CONFIDENCE_NEW_PROBLEM


def take_problem_told(
    dispatcher: CollectingDispatcher, tracker: Tracker, cleared: Dict[Text, Any]
) -> Dict[Text, Any]:
    """The customer told the problem instead of answering: no wrong answer, and not lost.

    The problem is kept (its first description too) and confirmed in one sentence as
    ``action_take_problem`` would; the question then stands (``ask_again`` words it anew), or
    falls away when the new topic needs no identity.
    """
    latest = tracker.latest_message or {}
    case = latest["intent"]["name"]
    slots: Dict[Text, Any] = dict(cleared)
    if case == "opening_hours" and tracker.get_slot("problem_intent"):
        # A question on the side ("hoe laat zijn jullie open?"): answered, and the case in hand
        # goes on where it was.
        dispatcher.utter_message(response="utter_opening_hours")
        return slots
    if case != tracker.get_slot("problem_intent"):
        slots.update(problem_intent=case, suggested_intent=None)
        if case not in CASES_WITHOUT_CONFIRMATION:
            dispatcher.utter_message(response=f"utter_understood_{case}")
    if not tracker.get_slot("problem_description"):
        slots["problem_description"] = latest.get("text")
    return slots


REFUSALS = ("utter_identification_mismatch", "utter_invalid_identifier", "utter_invalid_postcode")


def judged_this_turn(tracker: Tracker) -> bool:
    """True when the customer was already told, since their latest message, that the identity
    details did not match or could not be used."""
    return any(response in REFUSALS for response in said_since_customer(tracker))


def failed_attempt(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    response: str,
    cleared: Dict[Text, Any],
) -> Dict[Text, Any]:
    """One unusable or wrong answer: said once; the second goes to a person.

    Before handing a complex case over, identification is asked once and is optional: an
    answer that is not an identity means the customer cannot or will not give it, and the
    case goes to a person without it.
    """
    if _optional(tracker):
        return {**cleared, "identification_failed": True, "handoff_reason": "complexity"}
    attempts = int(tracker.get_slot("identification_attempts") or 0) + 1
    failed = attempts >= MAX_IDENTIFICATION_ATTEMPTS
    if not failed:
        dispatcher.utter_message(response=response)
    return {
        **cleared,
        "identification_attempts": float(attempts),
        "identification_failed": failed,
        **({"handoff_reason": "identification_failed"} if failed else {}),
    }


async def verify_identity(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    identifier_text: str,
    postcode: str,
) -> Dict[Text, Any]:
    """Checks identifier + postcode against the backend; the slots to set.

    On success the customer is greeted by name and, before anything is asked, told about a
    known outage at their address (rule 9). A mismatch never says which detail was wrong.
    """
    identifier = parse_identifier(identifier_text)
    try:
        # The outages at the given postcode are read while it is checked: once the customer is
        # verified it is their postcode (verify compares the normalised postcodes, and outages
        # are looked up by the normalised one), so the notice of rule 9 costs no second wait.
        customer, outages = await asyncio.gather(
            get_async_backend().verify(identifier, postcode), _outages_at(postcode)
        ) if identifier else (None, [])
    except BackendUnavailable as error:
        logger.warning("backend unavailable during identification: %s", error)
        dispatcher.utter_message(response="utter_backend_unavailable")
        return {"identification_failed": True, "handoff_reason": "backend_failure"}
    if identifier is None or customer is None:
        return failed_attempt(
            dispatcher,
            tracker,
            "utter_identification_mismatch",
            {"identifier": None, "postcode": None},
        )
    method = {"customer_number": "customer_number", "email": "email", "phone": "phone"}[identifier.kind]
    slots: Dict[Text, Any] = {
        "customer_id": customer.id,
        "customer_name": customer.name,
        "identity_verified_by": f"{method}+postcode",
        "identity_verified_at": time.time(),
        "identification_failed": False,
    }
    dispatcher.utter_message(response="utter_identified", customer_name=customer.name)
    for event in outage_notice_once(dispatcher, tracker, customer.postcode, outages):
        slots[event["name"]] = event["value"]
    return slots


async def _outages_at(postcode: str) -> List[Outage]:
    """The outages at the postcode; none when the backend cannot say (the notice is a courtesy)."""
    try:
        return await get_async_backend().outages_at(postcode)
    except BackendUnavailable:
        return []


def identity_given(tracker: Tracker) -> Tuple[Optional[str], Optional[str]]:
    """The usable identifier and postcode the customer has given (in this message or before)."""
    latest = tracker.latest_message or {}
    identifier = parse_identifier(tracker.get_slot("identifier"))
    postcode = parse_postcode(tracker.get_slot("postcode")) or belgian_postcode_in(latest.get("text"))
    if identifier and not postcode and (latest.get("intent") or {}).get("name") == "change_contact_details":
        # The postcode slot skips change requests (it may be the new address's); next to the
        # customer number, without a new address in the message, it is the check.
        from actions.solvers import address_in_request

        if not address_in_request(tracker):
            given = next((e.get("value") for e in latest.get("entities") or [] if e.get("entity") == "postcode"), None)
            postcode = parse_postcode(given) if isinstance(given, str) else None
    return (identifier.value if identifier else None), postcode


async def identify_now(dispatcher: CollectingDispatcher, tracker: Tracker) -> Tuple[List[EventType], str]:
    """Identity details given outside the form: verifies them when complete.

    Returns the events and what is next: ``verified``, ``failed`` (a person takes over),
    ``ask`` (something is missing or was wrong: the form asks only for that) or ``none``
    (nothing usable was given).
    """
    if is_identified(tracker):
        return [], "verified"
    identifier, postcode = identity_given(tracker)
    if not identifier and not postcode:
        return [], "none"
    events: List[EventType] = []
    if tracker.get_slot("identification_failed"):
        # A customer who gives their details after a failed try gets a fresh chance.
        events.append(SlotSet("identification_failed", False))
        tracker.slots["identification_failed"] = False
    if not (identifier and postcode):
        return events + [SlotSet("identifier", identifier), SlotSet("postcode", postcode)], "ask"
    slots = await verify_identity(dispatcher, tracker, identifier, postcode)
    tracker.slots.update(slots)
    events += [SlotSet(slot, value) for slot, value in slots.items()]
    if slots.get("customer_id"):
        return events, "verified"
    return events, "failed" if slots.get("identification_failed") else "ask"


class ActionIdentify(Action):
    """The customer gave identity details outside a question (first message, mid-conversation).

    Verifies them when complete, asks only what is missing, then goes on with the problem
    already told or asks what it is about (``action_solve_problem`` does both).
    """

    def name(self) -> Text:
        return "action_identify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = disclose_once(dispatcher, tracker)
        latest = tracker.latest_message or {}
        order = next((e.get("value") for e in latest.get("entities") or [] if e.get("entity") == "order_number"), None)
        if order and not tracker.get_slot("problem_intent"):
            # An order number on its own: the customer wants to know about that order.
            events += [SlotSet("problem_intent", "order_status"),
                       SlotSet("problem_description", tracker.get_slot("problem_description") or latest.get("text"))]
            tracker.slots["problem_intent"] = "order_status"
        found, status = await identify_now(dispatcher, tracker)
        events += found
        if status == "ask":
            return events + [SlotSet("next_step", "identify")]
        if status == "failed":
            return events + [SlotSet("next_step", "handoff")]
        if status == "none" and not is_identified(tracker):
            if tracker.get_slot("problem_intent"):
                return events + [SlotSet("next_step", "identify")]
            dispatcher.utter_message(response="utter_ask_problem")
            return events + [SlotSet("next_step", "done")]
        return events + [SlotSet("next_step", "solve")]


# Responses that end in the question themselves: the form's own question would say it twice.
ASKED_THIS_TURN = ("utter_identification_mismatch", "utter_identifier_alternatives")


def ask_again(tracker: Tracker, question: str) -> Optional[str]:
    """The response that asks ``question`` now: the question itself the first time in this run
    of the form, ``<question>_again`` (in other words, with an example) after that, the two
    taking turns, and nothing when the customer has just been asked the same in a refusal ("try
    once more, starting with your customer number"). The customer who answers "ok" or their
    problem is never asked the same sentence twice in a row.
    """
    if any(response in ASKED_THIS_TURN for response in said_since_customer(tracker)):
        return None
    again = f"{question}_again"
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == "identification_form":
            break
        asked = str((event.get("metadata") or {}).get("utter_action"))
        if event.get("event") == "bot" and asked.startswith(question):
            return question if asked == again else again
    return question


class ActionAskIdentifier(Action):
    """The identification form's question for the identifier.

    Before a complex case goes to a person the question says why, and that it is optional.
    """

    def name(self) -> Text:
        return "action_ask_identifier"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("problem_intent") in COMPLEX_CASES and not bot_tries_first(tracker):
            dispatcher.utter_message(response="utter_ask_identifier_before_handoff")
            return []
        response = ask_again(tracker, "utter_ask_identifier")
        if response:
            dispatcher.utter_message(response=response)
        return []


class ActionAskPostcode(Action):
    """The identification form's question for the postcode, worded anew when asked again."""

    def name(self) -> Text:
        return "action_ask_postcode"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        response = ask_again(tracker, "utter_ask_postcode")
        if response:
            dispatcher.utter_message(response=response)
        return []
