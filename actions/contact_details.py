"""Which contact detail a customer wants changed, and the new value in its stored form.

Read by the solver that changes the detail (actions/solvers.py) and by the form that asks for
what is missing (actions/contact_details_form.py).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from actions.address_parsing import address_in_text, without_lead_in
from actions.identifier_parsing import PHONE, normalise_phone, parse_identifier, parse_postcode

CONTACT_FIELDS = ("email", "phone", "address")
# A second unusable new e-mail/phone/address goes to a person (service rule 5).
MAX_CONTACT_ATTEMPTS = 2

_FIELD_WORDS = {
    "email": re.compile(r"e-?mail|mailadres|mail address", re.IGNORECASE),
    "phone": re.compile(r"telefoon|gsm|mobiel|nummer|phone|mobile|number", re.IGNORECASE),
    "address": re.compile(r"adres|address|verhuis|verhuiz|moving|move house|moved|straat|street|postcode",
                          re.IGNORECASE),
}
_ENTITY_FIELDS = {"email": "email", "phone_number": "phone", "postcode": "address"}


def detect_contact_field(text: str, entities: List[Dict[str, Any]]) -> Optional[str]:
    """Which contact detail a message is about: from a typed value, else from its words."""
    for entity in entities:
        field_name = _ENTITY_FIELDS.get(entity.get("entity") or "")
        if field_name:
            return field_name
    # "mailadres" contains "adres": e-mail is checked before address.
    for field_name in ("email", "address", "phone"):
        if _FIELD_WORDS[field_name].search(text or ""):
            return field_name
    return None


def normalise_contact_value(field_name: Optional[str], value: Optional[str], country: str = "NL") -> Optional[str]:
    """The new value in its stored form, or None when it is not valid for the field.

    A national phone number takes the customer's ``country`` ("0475 11 22 33" in Belgium).
    """
    if not value:
        return None
    if field_name == "email":
        found = parse_identifier(value)
        return found.value if found and found.kind == "email" else None
    if field_name == "phone":
        found = parse_identifier(value)
        raw = PHONE.search(value)
        return normalise_phone(raw.group(0), country) if found and found.kind == "phone" and raw else None
    if field_name == "address":
        # "Nieuwe adres is Kerkstraat 5, 3011 AB Rotterdam" is stored as "Kerkstraat 5, 3011 AB
        # Rotterdam"; an address written another way ("4 Station Road, Cardiff CF10 1EP") as typed,
        # without the words that announce it.
        address = address_in_text(value)
        if address:
            return address
        value = without_lead_in(value)
        postcode = parse_postcode(value)
        street = value.replace(postcode or "", "").strip(" ,") if postcode else ""
        return value if postcode and any(ch.isalpha() for ch in street) else None
    return None


def infer_contact_field(tracker: Tracker) -> Optional[str]:
    """Which detail the customer wants changed, from the value they gave or their own words."""
    new_value = tracker.get_slot("new_contact_value")
    if new_value:
        given = parse_identifier(new_value)
        if given is not None:
            return "email" if given.kind == "email" else "phone" if given.kind == "phone" else None
    # The message that asked for the change names the detail more often than the first
    # description does ("and can you change my e-mail address too?").
    latest = tracker.latest_message or {}
    if (latest.get("intent") or {}).get("name") == "change_contact_details":
        named = detect_contact_field(latest.get("text") or "", [])
        if named:
            return named
    return detect_contact_field(tracker.get_slot("problem_description") or "", [])
