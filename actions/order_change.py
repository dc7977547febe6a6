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

from actions.common import latest_intent, no_answer, not_ours_aside, said_since_customer
from actions.day_parsing import parse_day
from actions.address_parsing import address_in_text
from actions.identifier_parsing import parse_postcode

# A second answer that names neither an address nor a day goes to a person (service rule 5).
MAX_ORDER_CHANGE_ATTEMPTS = 2


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
        if not text.strip():
            # The slot emptied by the solver after an unusable day or address (it already said
            # why): nothing the customer said, so not a miss.
            return {"order_change": None}
        address, day = address_in_text(text), day_in_text(text)
        if address or day:
            return {"order_change": text, "delivery_address": address,
                    "delivery_day": day.isoformat() if day else None}
        if no_answer(tracker) or latest_intent(tracker) == "goodbye" or not_ours_aside(dispatcher, tracker):
            # "thanks mate" (or "doei") while the question stands: asked again, not counted as a
            # wrong answer.
            return {"order_change": None}
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
        if any(response.startswith("utter_order_change_bad_") for response in said_since_customer(tracker)):
            return []
        dispatcher.utter_message(response="utter_ask_order_change", order_number=tracker.get_slot("order_number") or "")
        return []
