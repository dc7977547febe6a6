"""The typed interface an operator implements to connect their own CRM/order system.

Actions only use :class:`CustomerBackend`. Every method may raise :class:`BackendUnavailable`
(down, slow, inconsistent data); actions then apologise once and hand over to a person.
Methods that act on a customer's records take the verified ``customer_id`` and must refuse
records of anyone else (return None / raise NotFound) without saying whose they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, runtime_checkable

from actions.identifiers import Identifier


class BackendUnavailable(RuntimeError):
    """The backend could not answer (down, slow, inconsistent). Actions escalate on it."""


class NotFound(LookupError):
    """The record does not exist for this customer (also when it belongs to someone else)."""


class NotEligible(RuntimeError):
    """A request outside policy (refund too late, warranty expired); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Customer:
    """A customer, as much as the assistant needs to know."""

    id: str  # the 8-digit customer number
    name: str
    email: str
    phone: str  # normalised, +31...
    postcode: str  # normalised: "3511 AB", "2000", "SW1A 1AA"
    country: str  # "NL", "BE", "GB"
    language: str = "nl"
    account_locked: bool = False
    street: str = ""
    city: str = ""


@dataclass(frozen=True)
class Order:
    """One order with its shipment."""

    number: str  # 10 digits
    customer_id: str
    items: List[str]
    status: str  # processing, shipped, late, delivered, lost
    ordered_on: dt.date
    expected_on: Optional[dt.date] = None
    delivered_on: Optional[dt.date] = None
    carrier: Optional[str] = None
    tracking: Optional[str] = None
    total_cents: int = 0


@dataclass(frozen=True)
class Purchase:
    """A product the customer bought (one order line), with its warranty."""

    id: int
    customer_id: str
    order_number: str
    product: str  # display name, e.g. "Philips föhn HP8230"
    category: str  # the catalogue word NLU maps product names to (data/nlu/entities.yml synonyms)
    price_cents: int
    purchased_on: dt.date
    warranty_until: Optional[dt.date]  # None: no warranty
    delivered_on: Optional[dt.date] = None
    returned: bool = False

    def in_warranty(self, today: dt.date) -> bool:
        """True when the warranty still runs on ``today``."""
        return self.warranty_until is not None and today <= self.warranty_until


@dataclass(frozen=True)
class Outage:
    """A known disruption affecting some postcodes."""

    id: int
    service: str  # "internet", "tv", "mobile"
    postcodes: List[str]  # 4-digit areas ("3511") or full postcodes
    started_at: dt.datetime
    expected_fix_at: Optional[dt.datetime]
    description_nl: str
    description_en: str


@dataclass(frozen=True)
class Shipment:
    """A replacement shipment, with collection of the defective product."""

    reference: str  # e.g. "RV-20261122-0001"
    customer_id: str
    purchase_id: int
    carrier: str
    expected_on: dt.date
    pickup_on: Optional[dt.date]  # collection of the old one


@dataclass(frozen=True)
class RefundPolicy:
    """The shop's refund rules."""

    days_after_delivery: int = 30
    max_amount_cents: int = 100_000  # above this a person approves


@dataclass(frozen=True)
class Refund:
    """A refund granted (and paid out within a few days)."""

    reference: str  # e.g. "RF-20261122-0001"
    customer_id: str
    order_number: str
    amount_cents: int
    due_on: dt.date  # money on the account by this date
    return_label: Optional[str] = None


@dataclass(frozen=True)
class PasswordReset:
    """The outcome of an account-access request."""

    email: str
    unlocked: bool = False
    sent_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


@dataclass(frozen=True)
class Promise:
    """A commitment made to a customer, kept visible until fulfilled."""

    id: int
    customer_id: str
    kind: str  # replacement, refund, callback, reply, redelivery
    description: str
    reference: Optional[str]
    due_at: dt.datetime
    status: str = "open"  # open, kept, broken, cancelled
    conversation_id: Optional[str] = None


@runtime_checkable
class CustomerBackend(Protocol):
    """What the assistant asks of the company's systems."""

    # -- customers ------------------------------------------------------------------------
    def find_customer(self, identifier: Identifier) -> Optional[Customer]:
        """The customer with this customer number, e-mail or phone (no verification)."""

    def verify(self, identifier: Identifier, postcode: str) -> Optional[Customer]:
        """The customer matching both the identifier and the postcode, else None."""

    def get_customer(self, customer_id: str) -> Optional[Customer]:
        """The customer with this id, else None."""

    def find_by_phone(self, phone: str) -> Optional[Customer]:
        """The customer with this (normalised, +31...) phone number, else None."""

    def update_contact_details(self, customer_id: str, field: str, value: str) -> Customer:
        """Sets ``field`` ("email", "phone" or "address") and returns the updated customer."""

    # -- orders, products ----------------------------------------------------------------
    def orders(self, customer_id: str) -> List[Order]:
        """The customer's orders, newest first."""

    def purchases(self, customer_id: str) -> List[Purchase]:
        """The products the customer bought, newest first."""

    # -- services ------------------------------------------------------------------------
    def outages_at(self, postcode: str, now: Optional[dt.datetime] = None) -> List[Outage]:
        """Outages active now at this postcode (matching its 4-digit area or exactly)."""

    # -- remedies ------------------------------------------------------------------------
    def ship_replacement(self, customer_id: str, purchase_id: int) -> Shipment:
        """Ships a replacement now and schedules collection; NotEligible outside warranty."""

    def refund_policy(self) -> RefundPolicy:
        """The refund rules."""

    def refund(self, customer_id: str, order_number: str) -> Refund:
        """Refunds the order now; NotEligible (with the reason) outside policy."""

    def reset_password(self, customer_id: str) -> PasswordReset:
        """Unlocks the account if locked and sends a reset link to the registered e-mail."""

    # -- promises ------------------------------------------------------------------------
    def add_promise(
        self,
        customer_id: str,
        kind: str,
        description: str,
        due_at: dt.datetime,
        reference: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Promise:
        """Stores a commitment with its due time (status "open")."""

    def promises(self, customer_id: str, status: Optional[str] = None) -> List[Promise]:
        """The customer's promises, oldest due first."""

    # -- privacy -------------------------------------------------------------------------
    def erase_customer(self, customer_id: str) -> Dict[str, int]:
        """Deletes the customer and every record about them (AVG/GDPR right to erasure):
        orders, purchases, replacements, refunds, password resets, promises.

        Returns the number of records deleted per kind (``{}`` when the customer is unknown);
        idempotent. ``scripts/erase_customer.py`` calls it after erasing the conversations.
        """
