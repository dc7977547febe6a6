"""Identification: the form that asks only for what is missing, once, and verifies it."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.backend import BackendUnavailable, get_backend
from actions.common import outage_notice_once
from actions.identifiers import parse_identifier, parse_postcode

logger = logging.getLogger(__name__)

# A wrong or unusable answer may happen once; the second goes to a person (service rule 5).
MAX_IDENTIFICATION_ATTEMPTS = 2


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
        # Nothing to ask once verified, or once identification has failed (a person takes over).
        if tracker.get_slot("customer_id") or tracker.get_slot("identification_failed"):
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
        if identifier is None:
            return self._failed_attempt(dispatcher, tracker, "utter_invalid_identifier", {"identifier": None})
        return {"identifier": identifier.value}

    def validate_postcode(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> Dict[Text, Any]:
        postcode = parse_postcode(value if isinstance(value, str) else None)
        if postcode is None:
            return self._failed_attempt(dispatcher, tracker, "utter_invalid_postcode", {"postcode": None})
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
        identifier, postcode = tracker.get_slot("identifier"), tracker.get_slot("postcode")
        if (
            identifier
            and postcode
            and not tracker.get_slot("customer_id")
            and not tracker.get_slot("identification_failed")
        ):
            verified = self._verify(dispatcher, tracker, identifier, postcode)
            tracker.slots.update(verified)
            events += [SlotSet(slot, value) for slot, value in verified.items()]
        return events

    def _verify(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        identifier_text: str,
        postcode: str,
    ) -> Dict[Text, Any]:
        identifier = parse_identifier(identifier_text)
        try:
            customer = get_backend().verify(identifier, postcode) if identifier else None
        except BackendUnavailable as error:
            logger.warning("backend unavailable during identification: %s", error)
            dispatcher.utter_message(response="utter_backend_unavailable")
            return {"identification_failed": True, "handoff_reason": "backend_failure"}
        if customer is None:
            # Never say which of the two was wrong: that would tell a stranger who is a customer.
            return self._failed_attempt(
                dispatcher,
                tracker,
                "utter_identification_mismatch",
                {"identifier": None, "postcode": None},
            )
        method = {"customer_number": "customer_number", "email": "email", "phone": "phone"}[identifier.kind]
        slots = {
            "customer_id": customer.id,
            "customer_name": customer.name,
            "identity_verified_by": f"{method}+postcode",
            "identity_verified_at": time.time(),
        }
        dispatcher.utter_message(response="utter_identified", customer_name=customer.name)
        # Rule 9: a known outage at their address comes first, before anything is asked.
        try:
            outages = get_backend().outages_at(customer.postcode)
        except BackendUnavailable:
            outages = []
        if outage_notice_once(dispatcher, tracker, customer.postcode, outages):
            slots["outage_notified"] = True
        return slots

    @staticmethod
    def _failed_attempt(
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        response: str,
        cleared: Dict[Text, Any],
    ) -> Dict[Text, Any]:
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
