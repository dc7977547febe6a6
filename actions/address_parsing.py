"""An address read from what the customer writes: "Kerkstraat 5, 1234 AB Dorp", "12 Baker Street,
LS1 4AP Leeds", "het nieuwe adres is Meir 10 bus 3, 2000 Antwerpen". Used for a new delivery
address (actions/order_change.py) and a new home address (actions/contact_details.py)."""

from __future__ import annotations

import re
from typing import Optional

from actions.identifier_parsing import parse_postcode

# A street with its house number right before the postcode: "Kerkstraat 5a", "12 Baker Street",
# "Meir 10 bus 3". House numbers have at most 4 digits (a customer number has 8).
_WORD = r"[A-Za-zÀ-ÿ][\wÀ-ÿ'.-]*"
_STREET = re.compile(
    rf"(?:(?<=\s)|^)((?:{_WORD}\s+){{0,3}}{_WORD}\s+\d{{1,4}}[a-zA-Z]?(?:\s*(?:bus|-)\s*\d{{1,3}})?"
    rf"|\d{{1,4}}[a-zA-Z]?\s+(?:{_WORD}\s+){{0,3}}{_WORD})[\s,]*$")
# Words that lead to the new address ("naar", "to", "het nieuwe adres is"): the street starts after them.
_LEAD_IN = re.compile(r"^.*\b(?:naar|op(?: het)? adres|adres(?: is| wordt)?|bezorgen (?:op|bij)|to|deliver (?:it )?to|"
                      r"address(?: is)?|send (?:it )?to)\s*:?\s+", re.IGNORECASE)
# "postcode 5611 AZ" after a customer number identifies the customer; it is not a new address.
_IDENTITY_LABEL = re.compile(r"(?:post ?code|pc|zip)\s*:?\s*$", re.IGNORECASE)
_TOWN = re.compile(rf"^[\s,]*({_WORD}(?:[ -][A-ZÀ-Ý][\wÀ-ÿ'.-]*)?)")
# Words that can come before a street name but are not part of it ("bezorg het op Dorpsstraat 14").
_NOT_STREET = {"bezorg", "bezorgen", "lever", "leveren", "stuur", "sturen", "het", "op", "de", "naar", "bij", "mijn",
               "nieuwe", "adres", "is", "wordt", "nu", "graag", "aub", "kan", "dat", "deliver", "send", "it", "to", "the",
               "my", "new", "address", "at", "on", "please", "pls", "can", "you", "instead", "now"}


def address_in_text(text: Optional[str]) -> Optional[str]:
    """The address a message gives: a street with a house number, the postcode and the town
    after it, as typed ("Kerkstraat 5, 1234 AB Dorp"); None when the message has none (a postcode
    given to identify the customer is not an address)."""
    if not text:
        return None
    postcode = parse_postcode(text)
    if postcode is None:
        return None
    found = re.search(re.escape(postcode).replace(r"\ ", r"\s*"), text, re.IGNORECASE)
    if found is None:
        return None
    before = text[:found.start()]
    before = re.split(r"[?!;:]\s|\.\s", before)[-1]  # this sentence only
    before = _LEAD_IN.sub("", before)
    if _IDENTITY_LABEL.search(before):
        return None
    street = _STREET.search(before)
    if street is None:
        return None
    town = _TOWN.match(text[found.end():])
    words = street.group(1).strip(" ,").split()
    while len(words) > 2 and words[0].lower() in _NOT_STREET:
        words.pop(0)
    parts = [" ".join(words), found.group(0)]
    address = ", ".join(parts) + (f" {town.group(1)}" if town else "")
    return address.strip()


def without_lead_in(text: str) -> str:
    """The text after the words that announce an address ("mijn nieuwe adres is: …")."""
    return _LEAD_IN.sub("", text.strip()).strip()
