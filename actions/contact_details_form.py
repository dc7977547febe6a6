"""Changing contact details: which detail, and the new value, asked only when not yet given."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.common import no_answer, not_ours_aside
from actions.contact_details import MAX_CONTACT_ATTEMPTS, detect_contact_field, normalise_contact_value


def identified_this_turn(tracker: Tracker) -> bool:
    """The customer was verified after their latest message (by the details in it)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "slot" and event.get("name") == "customer_id" and event.get("value"):
            return True
    return False


class ValidateContactDetailsForm(FormValidationAction):
    """Fills ``contact_field`` from what the customer already said, validates the new value."""

    def name(self) -> Text:
        return "validate_contact_details_form"

    async def extract_contact_field(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        # Only an answer to "what would you like to change?" is read here; what the customer
        # said before was already used by the solver (actions.contact_details.infer_contact_field).
        if tracker.get_slot("contact_field") or tracker.get_slot("requested_slot") != "contact_field":
            return {}
        latest = tracker.latest_message or {}
        field_name = detect_contact_field(latest.get("text") or "", latest.get("entities") or [])
        return {"contact_field": field_name} if field_name else {}

    def validate_new_contact_value(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        field_name = tracker.get_slot("contact_field")
        if identified_this_turn(tracker):
            # The detail in the message that identified the customer ("ruby.evans@…, CF10 1EP")
            # is the one on file, not the new one.
            return {"new_contact_value": None}
        if not field_name:
            return {"new_contact_value": value}  # checked once the field is known
        if normalise_contact_value(field_name, value if isinstance(value, str) else None):
            return {"new_contact_value": value}
        if no_answer(tracker) or not_ours_aside(dispatcher, tracker):
            return {"new_contact_value": None}
        attempts = int(tracker.get_slot("contact_attempts") or 0) + 1
        if attempts >= MAX_CONTACT_ATTEMPTS:
            # A second unusable answer: a person finishes the change (the form ends).
            return {"new_contact_value": None, "contact_attempts": float(attempts)}
        dispatcher.utter_message(response="utter_invalid_contact_value")
        return {"new_contact_value": None, "contact_attempts": float(attempts)}

    async def required_slots(
        self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Text]:
        if int(tracker.get_slot("contact_attempts") or 0) >= MAX_CONTACT_ATTEMPTS:
            return []
        return domain_slots
