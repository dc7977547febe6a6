"""Pure helpers for the identifiers customers type: customer numbers, e-mail, phone, postcode."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

CUSTOMER_NUMBER = re.compile(r"(?<!\d)(\d{8})(?!\d)")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?:\+|00)\d{2}[\s-]?(?:\(0\))?[\s-]?\d(?:[\s-]?\d){7,10}|(?<!\d)0\d(?:[\s-]?\d){8,9}(?!\d)")
POSTCODE_NL = re.compile(r"(?<![\dA-Za-z])([1-9]\d{3})\s?(?!SA|SD|SS)([A-Za-z]{2})(?![A-Za-z])", re.IGNORECASE)
POSTCODE_BE = re.compile(r"(?<![\d\w])([1-9]\d{3})(?![\d\w])")
POSTCODE_UK = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,2}\d[A-Za-z\d]?)\s*(\d[A-Za-z]{2})(?![A-Za-z0-9])")


# A Belgian postcode is four digits, like a year or an amount: outside the question for it, it is
# taken only where the customer says it is one, or right after their customer number.
BE_POSTCODE_NAMED = re.compile(
    r"\b(?:postcode|postnummer|post code|postal code|zip)\W{0,3}(?:is\W{1,2}|:\W?)?([1-9]\d{3})(?!\d)(?!\s?[A-Za-z]{2}\b)",
    re.IGNORECASE)
BE_POSTCODE_AFTER_NUMBER = re.compile(
    r"(?<!\d)\d{8}(?!\d)[\s,;/]+(?:en\s+|and\s+|&\s*)?([1-9]\d{3})(?!\d)(?!\s?[A-Za-z]{2}\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Identifier:
    """Something a customer can be looked up by."""

    kind: str  # "customer_number", "email" or "phone"
    value: str  # normalised


COUNTRY_CODES = {"NL": "+31", "BE": "+32", "GB": "+44"}


def normalise_phone(text: str, country: str = "NL") -> str:
    """E.164-style: "06 1234 5678" → "+31612345678", "0032 470..." → "+32470...".

    A national number ("0475 11 22 33") takes the country of the customer it belongs to
    (Dutch by default): 04.. is a Belgian mobile and a Dutch regional number alike. Eleven digits
    with the leading 0 ("07700 900123") is British whatever the default: Dutch and Belgian
    national numbers are at most ten digits.
    """
    digits = re.sub(r"[^\d+]", "", text.replace("(0)", ""))
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0") and len(digits) == 11:
        return COUNTRY_CODES["GB"] + digits[1:]
    national = {"NL": (10,), "BE": (9, 10), "GB": (10, 11)}.get(country, (10,))
    if digits.startswith("0") and len(digits) in national:
        return COUNTRY_CODES.get(country, "+31") + digits[1:]
    return digits


def parse_identifier(text: Optional[str]) -> Optional[Identifier]:
    """The first customer number, e-mail address or phone number in ``text``."""
    if not text:
        return None
    email = EMAIL.search(text)
    if email:
        return Identifier("email", email.group(0).lower())
    phone = PHONE.search(text)
    if phone:
        return Identifier("phone", normalise_phone(phone.group(0)))
    number = CUSTOMER_NUMBER.search(text)
    if number:
        return Identifier("customer_number", number.group(1))
    return None


def parse_postcode(text: Optional[str]) -> Optional[str]:
    """A Dutch ("1234 AB"), UK ("SW1A 1AA") or Belgian ("2000") postcode, normalised."""
    if not text:
        return None
    nl = POSTCODE_NL.search(text)
    if nl:
        return f"{nl.group(1)} {nl.group(2).upper()}"
    uk = POSTCODE_UK.search(text)
    if uk:
        return f"{uk.group(1).upper()} {uk.group(2).upper()}"
    be = POSTCODE_BE.search(text)
    if be:
        return be.group(1)
    return None


def belgian_postcode_in(text: Optional[str]) -> Optional[str]:
    """A four-digit postcode the customer marked as one ("postcode 2000", "51937204, 2000")."""
    if not text:
        return None
    found = BE_POSTCODE_NAMED.search(text) or BE_POSTCODE_AFTER_NUMBER.search(text)
    return found.group(1) if found else None


def mask_email(email: Optional[str]) -> str:
    """"sanne.bakker@gmail.com" → "s***r@gmail.com": enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return "***"
    local, domain = email.split("@", 1)
    if len(local) <= 2:
        return f"{local[:1]}***@{domain}"
    return f"{local[0]}***{local[-1]}@{domain}"
