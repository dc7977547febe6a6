"""Helpers shared by the action modules (no Rasa server needed to test them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

# Cases the bot solves itself (after identification where needed), and cases for a person.
SIMPLE_CASES = (
    "order_status",
    "report_outage",
    "defective_product",
    "request_refund",
    "account_access",
    "change_contact_details",
    "opening_hours",
)
COMPLEX_CASES = ("complaint", "billing_dispute", "privacy_request")
CASE_INTENTS = SIMPLE_CASES + COMPLEX_CASES
# Facts need no identity; everything about the customer's own account does.
CASES_WITHOUT_IDENTITY = ("opening_hours",)

IDENTITY_SLOTS = (
    "customer_id",
    "customer_name",
    "identity_verified_by",
    "identity_verified_at",
)

_MONTHS = {
    "nl": "januari februari maart april mei juni juli augustus september oktober november december".split(),
    "en": "January February March April May June July August September October November December".split(),
}
_WEEKDAYS = {
    "nl": "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag".split(),
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split(),
}


def language(tracker: Tracker) -> str:
    """The conversation's reply language."""
    value = tracker.get_slot("language")
    return value if value in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def format_date(day: Optional[dt.date], lang: str) -> str:
    """"dinsdag 24 november" / "Tuesday 24 November"; an empty string for no date."""
    if day is None:
        return ""
    lang = lang if lang in _MONTHS else DEFAULT_LANGUAGE
    return f"{_WEEKDAYS[lang][day.weekday()]} {day.day} {_MONTHS[lang][day.month - 1]}"


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
