"""The new delivery address or day of an order, read from what the customer writes.

``order_change_form`` asks for it when the request did not say it ("kan mijn bestelling ergens
anders heen?"); the request itself is read first by :func:`actions.cases.solve_change_order`
("deliver order 2024121502 on saturday", "mijn bestelling naar Kerkstraat 5, 1234 AB Dorp").
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.identifiers import parse_postcode
from bot.dates import parse_day

# A second answer that names neither an address nor a day goes to a person (service rule 5).
MAX_ORDER_CHANGE_ATTEMPTS = 2
# Words before the address: "naar", "op het adres", "to", "the new address is".
_LEAD_IN = re.compile(r"^.*?\b(?:naar|op(?: het)? adres|adres(?: is| wordt)?|bezorgen (?:op|bij)|to|deliver (?:it )?to|"
                      r"address(?: is)?|send (?:it )?to)\s*:?\s+(?=\D*\d)", re.IGNORECASE)


def address_in_text(text: Optional[str]) -> Optional[str]:
    """The address a message gives (a postcode and a street with its number), as typed; else None."""
    if not text:
        return None
    postcode = parse_postcode(text)
    if postcode is None:
        return None
    address = _LEAD_IN.sub("", text.strip()).strip(" .!?")
    # Needs a street name and a house number besides the postcode.
    rest = re.sub(re.escape(postcode).replace(r"\ ", r"\s*"), " ", address, flags=re.IGNORECASE)
    if not re.search(r"[A-Za-zÀ-ÿ]{3,}", rest) or not re.search(r"\d", rest):
        return None
    return address


def day_in_text(text: Optional[str], today: Optional[dt.date] = None) -> Optional[dt.date]:
    """The delivery day a message names ("zaterdag", "next tuesday", "15 december"), else None."""
    if not text:
        return None
    # A postcode or an order number is not a date.
    cleaned = re.sub(r"\b\d{10}\b", " ", text)
    postcode = parse_postcode(cleaned)
    if postcode:
        cleaned = cleaned.replace(postcode, " ")
    return parse_day(cleaned, today or dt.date.today())


class ValidateOrderChangeForm(FormValidationAction):
    """Reads the answer to "which address or day?" into ``delivery_address`` / ``delivery_day``."""

    def name(self) -> Text:
        return "validate_order_change_form"

    def validate_order_change(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        text = value if isinstance(value, str) else ""
        address, day = address_in_text(text), day_in_text(text)
        if address or day:
            return {"order_change": text, "delivery_address": address,
                    "delivery_day": day.isoformat() if day else None}
        attempts = int(tracker.get_slot("order_change_attempts") or 0) + 1
        if attempts < MAX_ORDER_CHANGE_ATTEMPTS:
            dispatcher.utter_message(response="utter_order_change_not_understood")
        return {"order_change": None, "order_change_attempts": float(attempts)}

    async def required_slots(
        self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Text]:
        if int(tracker.get_slot("order_change_attempts") or 0) >= MAX_ORDER_CHANGE_ATTEMPTS:
            return []
        return domain_slots


class ActionAskOrderChange(Action):
    """Asks for the new address or day, unless the bot just said why the last one did not work
    (that reply already asks for another one: one question, not two)."""

    def name(self) -> Text:
        return "action_ask_order_change"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                break
            if event.get("event") == "bot" and str((event.get("metadata") or {}).get("utter_action")).startswith(
                    "utter_order_change_bad_"):
                return []
        dispatcher.utter_message(response="utter_ask_order_change", order_number=tracker.get_slot("order_number") or "")
        return []
