"""Amounts as customers read them: in their own currency and language.

A customer in the United Kingdom pays in pounds, everyone else (the Netherlands, Belgium) in euros;
the backend stores every amount in cents of the customer's own currency (orders, refunds, and the
goodwill policy's amounts too, see actions/backend/policy.yml). Standard library only, so the
backend (its promise texts) and the actions (their replies) format the same way.
"""

from __future__ import annotations

from typing import Optional

SYMBOLS = {"GB": "£"}  # by the customer's country; every other country pays in euros
DEFAULT_SYMBOL = "€"


def currency_symbol(country: Optional[str]) -> str:
    """"£" for a customer in the United Kingdom, "€" otherwise (and when the country is unknown)."""
    return SYMBOLS.get((country or "").upper(), DEFAULT_SYMBOL)


def format_money(cents: int, lang: str, country: Optional[str] = None) -> str:
    """"€ 1.149,99" in Dutch, "€1,149.99" in English; "£" for a customer in the United Kingdom."""
    symbol = currency_symbol(country)
    amount = f"{cents / 100:,.2f}"
    if lang == "nl":
        return f"{symbol} " + amount.replace(",", " ").replace(".", ",").replace(" ", ".")
    return symbol + amount
