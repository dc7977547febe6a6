"""Helpers shared by the action modules (no Rasa server needed to test them)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES
from actions.money import format_money
from contract.dates import format_date, format_fix_time  # noqa: F401 (the actions' date wording)

# Cases the bot solves itself (after identification where needed), and cases for a person.
SIMPLE_CASES = (
    "order_status",
    "report_outage",
    "defective_product",
    "request_refund",
    "account_access",
    "change_contact_details",
    "opening_hours",
    "cancel_order",
    "change_order",
    "invoice",
    "failed_payment",
    "create_account",
    "delete_account",
    "newsletter",
    "feedback",
    "request_compensation",
)
# Cases for a person. The bot first tries one that it can sometimes solve (a double charge the
# backend sees is refunded at once): those have a solver in actions.cases.CASE_SOLVERS.
COMPLEX_CASES = ("complaint", "billing_dispute", "privacy_request")
CASE_INTENTS = SIMPLE_CASES + COMPLEX_CASES
# Facts, a new account and feedback need no identity; everything about the customer's own
# account does.
CASES_WITHOUT_IDENTITY = ("opening_hours", "create_account", "feedback")
# Cases whose message is itself the answer: no "I understand you want ..." first.
CASES_WITHOUT_CONFIRMATION = ("feedback",)

IDENTITY_SLOTS = (
    "customer_id",
    "customer_name",
    "identity_verified_by",
    "identity_verified_at",
)

def language(tracker: Tracker) -> str:
    """The conversation's reply language."""
    value = tracker.get_slot("language")
    return value if value in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def disclose_once(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[str, Any]]:
    """Says the bot is automated (and how to reach a person) if it has not said so yet."""
    if tracker.get_slot("disclosed"):
        return []
    dispatcher.utter_message(response="utter_disclosure")
    return [SlotSet("disclosed", True)]


def is_identified(tracker: Tracker) -> bool:
    """True once the customer's identity is verified (in this or an earlier session)."""
    return bool(tracker.get_slot("customer_id"))


def record_attempt(tracker: Tracker, attempt: str) -> SlotSet:
    """Appends "what the bot tried: result" to ``bot_attempts`` (shown to the agent)."""
    attempts = list(tracker.get_slot("bot_attempts") or [])
    attempts.append(attempt)
    return SlotSet("bot_attempts", attempts)


def remember_topic(topic: str, facts: Optional[Dict[str, Any]] = None) -> List[SlotSet]:
    """What was just handled, for follow-ups ("how long?", "it still doesn't work").

    ``facts`` are what the customer was told (reference, dates, carrier), as JSON-ready values,
    so a question about a detail just given is answered with that detail.
    """
    return [SlotSet("last_topic", topic), SlotSet("topic_facts", facts or {}), SlotSet("follow_up_asked", None)]


def last_response(tracker: Tracker) -> Optional[str]:
    """The response of the bot's latest line, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action")
    return None


def acknowledge_once(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """One short acknowledgement; a second in a row stays silent rather than saying it again."""
    if last_response(tracker) != "utter_acknowledge":
        dispatcher.utter_message(response="utter_acknowledge")


def answer_puzzled(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """"???" (question marks and nothing else): the customer is puzzled by what was said, so they
    are asked what is unclear, not told "fine" or "please rephrase". True when answered so."""
    text = (tracker.latest_message or {}).get("text") or ""
    if "?" not in text or any(ch.isalnum() for ch in text):
        return False
    dispatcher.utter_message(response="utter_anything_unclear")
    return True


def said_since_customer(tracker: Tracker) -> List[str]:
    """The responses the bot has sent since the customer's latest message (this turn so far)."""
    said: List[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "bot":
            said.append(str((event.get("metadata") or {}).get("utter_action") or ""))
    return said


# Questions about what is in hand ("how long?", "can it be faster?", "it still doesn't work").
FOLLOW_UP_INTENTS = ("ask_when", "ask_faster", "not_solved")


def no_answer(tracker: Tracker, questions: bool = True) -> bool:
    """The customer's message is no answer to the question that stands, right or wrong: an
    acknowledgement ("ok", "thanks", "hallo", an emoji) or, with ``questions``, a question about
    the matter in hand ("hoe lang nog?"). A form asks again, in other words, without counting a
    wrong answer."""
    if language_requested(tracker):
        return False  # answered beside the question (not_ours_aside)
    text = (tracker.latest_message or {}).get("text") or ""
    intent = latest_intent(tracker)
    ignored = ("affirm", "thank", "greet") + (FOLLOW_UP_INTENTS if questions else ())
    return intent in ignored or not any(ch.isalnum() for ch in text)


def language_requested(tracker: Tracker) -> bool:
    """The latest message asks for a language ("in English please", "spreekt u Nederlands?"); the
    ``language`` slot has already followed it (bot/language.py)."""
    detection = (tracker.latest_message or {}).get("language_detection") or {}
    return bool(detection.get("requested")) and latest_intent(tracker) not in CASE_INTENTS


def answer_language_request(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """"In English please" gets "of course" in that language, not "I can't help with that"."""
    if not language_requested(tracker):
        return False
    dispatcher.utter_message(response="utter_language_switched")
    return True


def not_ours_aside(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """Something said beside the question that stands, answered in one sentence, and True: a
    language asked for ("can you help me in english please": yes, in English) or a request that
    is not ours ("what's the weather tomorrow?" when the postcode is asked). The question stands
    (asked again in other words) and no wrong answer is counted. Gibberish is not set aside: it
    may be a mistyped answer."""
    if answer_language_request(dispatcher, tracker):
        return True
    latest = tracker.latest_message or {}
    if latest_intent(tracker) != "out_of_scope" or latest.get("nonsense"):
        return False
    dispatcher.utter_message(response="utter_out_of_scope_aside")
    return True


def latest_intent(tracker: Tracker) -> Optional[str]:
    """The intent of the latest customer message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def latest_user_metadata(tracker: Tracker) -> Dict[str, Any]:
    """Metadata sent by the channel with the latest customer message, else the session's."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            metadata = event.get("metadata")
            if isinstance(metadata, dict) and metadata:
                return metadata
            break
    session = tracker.get_slot("session_started_metadata")
    return session if isinstance(session, dict) else {}


def says_unsupported_language(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """If the message is clearly in a language we do not speak, says so (in both) and True."""
    detection = (tracker.latest_message or {}).get("language_detection") or {}
    if not detection.get("other_language"):
        return False
    dispatcher.utter_message(response="utter_unsupported_language")
    return True


# The catalogue words the entity synonyms map products to (data/nlu/entities.yml), as a customer
# reads them in each language: "hairdryer" is stored as "föhn", which an English reply must not say.
PRODUCT_WORDS: Dict[str, Dict[str, str]] = {
    "föhn": {"nl": "föhn", "en": "hair dryer"},
    "kettle": {"nl": "waterkoker", "en": "kettle"},
    "headphones": {"nl": "koptelefoon", "en": "headphones"},
    "vacuum cleaner": {"nl": "stofzuiger", "en": "vacuum cleaner"},
    "washing machine": {"nl": "wasmachine", "en": "washing machine"},
    "coffee machine": {"nl": "koffiezetapparaat", "en": "coffee machine"},
    "phone": {"nl": "telefoon", "en": "phone"},
    "tv": {"nl": "tv", "en": "TV"},
}


def product_word(value: str, lang: str) -> str:
    """A product entity's value as the customer reads it in ``lang`` (other words unchanged)."""
    return PRODUCT_WORDS.get(value.lower(), {}).get(lang, value)


# How a service is named in a sentence, per language ("the outage nearby is on {service}").
SERVICE_NAMES = {
    "nl": {"internet": "internet", "tv": "tv", "mobile": "het mobiele netwerk"},
    "en": {"internet": "the internet", "tv": "TV", "mobile": "the mobile network"},
}


def service_name(service: str, lang: str) -> str:
    """"het mobiele netwerk" / "the mobile network" for "mobile"."""
    return SERVICE_NAMES.get(lang, SERVICE_NAMES["en"]).get(service, service)


async def money_for(tracker: Tracker) -> Callable[[int], str]:
    """Formats amounts for this conversation: the customer's language and the currency of their
    country (£ for a customer in the United Kingdom, else €). The country comes from the backend
    (one lookup), whichever way the customer was identified; unknown or unreachable: euros."""
    lang = language(tracker)
    country = None
    customer_id = tracker.get_slot("customer_id")
    if customer_id:
        from actions.backend import BackendUnavailable, get_async_backend

        try:
            customer = await get_async_backend().get_customer(str(customer_id))
        except BackendUnavailable:
            customer = None
        country = customer.country if customer else None
    return lambda cents: format_money(cents, lang, country)


def outage_notice_once(
    dispatcher: CollectingDispatcher, tracker: Tracker, postcode: str, outages: List[Any]
) -> List[Dict[str, Any]]:
    """Tells the customer about the outage at their address, once per session (rule 9)."""
    if not outages or tracker.get_slot("outage_notified"):
        return []
    outage = outages[0]
    lang = language(tracker)
    dispatcher.utter_message(
        response="utter_outage_notice",
        postcode=postcode,
        description_nl=outage.description_nl,
        description_en=outage.description_en,
        fix_time=format_fix_time(outage.expected_fix_at, lang),
    )
    return [SlotSet("outage_notified", True), *remember_topic("report_outage", {"postcode": postcode})]


async def proactive_outage_notice(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[str, Any]]:
    """For an identified customer not yet told: checks their address for an outage and says so.

    A backend failure here is not the customer's problem: the notice is skipped, the
    conversation goes on.
    """
    if not is_identified(tracker) or tracker.get_slot("outage_notified"):
        return []
    from actions.backend import BackendUnavailable, get_async_backend

    try:
        backend = get_async_backend()
        customer = await backend.get_customer(str(tracker.get_slot("customer_id")))
        outages = await backend.outages_at(customer.postcode) if customer else []
    except BackendUnavailable:
        return []
    return outage_notice_once(dispatcher, tracker, customer.postcode, outages) if customer else []
