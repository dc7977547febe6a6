"""The typed interface an operator implements to connect their own CRM/order system."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import List, Optional, Protocol, runtime_checkable

from actions.identifiers import Identifier


class BackendUnavailable(RuntimeError):
    """The backend could not answer (down, slow, inconsistent). Actions escalate on it."""


@dataclass(frozen=True)
class Customer:
    """A verified customer, as much as the assistant needs to know."""

    id: str
    name: str
    email: str
    phone: str
    postcode: str
    country: str  # "NL", "BE", "GB"
    account_locked: bool = False


@dataclass(frozen=True)
class Order:
    """One order with its shipment."""

    number: str
    customer_id: str
    items: List[str]
    status: str  # processing, shipped, late, delivered, lost
    ordered_on: dt.date
    expected_on: Optional[dt.date] = None
    delivered_on: Optional[dt.date] = None
    carrier: Optional[str] = None
    tracking: Optional[str] = None


@dataclass(frozen=True)
class PasswordReset:
    """The outcome of an account-access request."""

    email: str
    unlocked: bool = False
    sent_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


@runtime_checkable
class CustomerBackend(Protocol):
    """What the assistant asks of the company's systems. Raise BackendUnavailable on failure."""

    def verify(self, identifier: Identifier, postcode: str) -> Optional[Customer]:
        """The customer matching both the identifier and the postcode, else None."""

    def get_customer(self, customer_id: str) -> Optional[Customer]:
        """The customer with this id, else None."""

    def find_by_phone(self, phone: str) -> Optional[Customer]:
        """The customer with this (normalised, +31...) phone number, else None."""

    def orders(self, customer_id: str) -> List[Order]:
        """The customer's orders, newest first."""

    def reset_password(self, customer_id: str) -> PasswordReset:
        """Unlocks the account if locked and sends a reset link to the registered e-mail."""
