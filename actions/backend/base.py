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

from actions.backend.policy import ServicePolicy
from actions.identifier_parsing import Identifier


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
    status: str  # processing, shipped, late, delivered, lost, cancelled
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
    resolved_at: Optional[dt.datetime] = None  # None while it lasts


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
    kind: str  # replacement, refund, return, callback, reply, redelivery, privacy, goodwill
    description: str
    reference: Optional[str]
    due_at: dt.datetime
    status: str = "open"  # open, kept, broken, cancelled (settle_promise)
    conversation_id: Optional[str] = None


@dataclass(frozen=True)
class OrderReturn:
    """A return started for an order (a shipped order cancelled, for example)."""

    reference: str  # e.g. "RT-20261122-0001"
    customer_id: str
    order_number: str
    return_label: str  # prepaid label, e.g. "RL-20261122-0001"
    return_by: dt.date  # hand the parcel in before this day
    amount_cents: int  # refunded once the parcel is back
    status: str = "open"  # open, received, refunded


@dataclass(frozen=True)
class Cancellation:
    """The outcome of cancelling an order: cancelled now, or a return started."""

    order_number: str
    outcome: str  # "cancelled" (was still processing) or "return_started" (already shipped)
    refund: Optional[Refund] = None  # cancelled: the money back, with a reference
    order_return: Optional[OrderReturn] = None  # return_started: the return, with a reference


@dataclass(frozen=True)
class OrderChange:
    """Where and when an order (not yet shipped) is delivered, after a change."""

    order_number: str
    street: str
    postcode: str
    city: str
    delivery_day: Optional[dt.date]  # None: the first day the carrier can


@dataclass(frozen=True)
class Invoice:
    """An invoice, as the customer sees it."""

    number: str  # e.g. "F2026-004711"
    customer_id: str
    order_number: Optional[str]
    amount_cents: int
    issued_on: dt.date
    due_on: dt.date
    status: str  # open, paid


@dataclass(frozen=True)
class InvoiceCopy:
    """A copy of an invoice sent to the e-mail address on file."""

    invoice: Invoice
    masked_email: str  # "s***s@example.nl": enough to recognise, nothing to harvest
    sent_at: dt.datetime


@dataclass(frozen=True)
class FailedPayment:
    """A payment that did not go through; the order waits ``kept_until`` for a new attempt."""

    order_number: str
    amount_cents: int
    method: str  # ideal, card, bancontact, paypal
    reason: str  # insufficient_funds, card_expired, cancelled_by_customer, declined
    failed_at: dt.datetime
    kept_until: dt.date  # the order is cancelled after this day when still unpaid
    hold_days: int  # from the policy


@dataclass(frozen=True)
class DuplicateChargeRefund:
    """A double charge found and refunded."""

    reference: str  # e.g. "RC-20261122-0001"
    customer_id: str
    order_number: str
    amount_cents: int
    charged_at: dt.datetime  # when the duplicate was taken
    due_on: dt.date  # money back on the account by this day


@dataclass(frozen=True)
class SignupLink:
    """A link to create an account, with a one-time token (no personal data in it)."""

    url: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class PrivacyRequest:
    """An AVG/GDPR request recorded, with the date it will have been carried out."""

    reference: str  # e.g. "PV-20261122-0001"
    customer_id: str
    kind: str  # "erasure"
    requested_at: dt.datetime
    due_on: dt.date
    status: str = "open"


@dataclass(frozen=True)
class NewsletterUnsubscription:
    """The customer is off the newsletter; ``was_subscribed`` False when they already were."""

    customer_id: str
    was_subscribed: bool
    unsubscribed_at: Optional[dt.datetime]  # None: never subscribed


@dataclass(frozen=True)
class Feedback:
    """Feedback kept verbatim for the team."""

    id: int
    text: str
    language: str
    channel: str
    created_at: dt.datetime
    customer_id: Optional[str] = None
    conversation_id: Optional[str] = None


@dataclass(frozen=True)
class Goodwill:
    """A goodwill gesture granted (or, with ``status`` "needs_person", proposed to a person).

    ``event_key`` names what it is for ("outage:12", "order:2024120451", "purchase:17"); one
    gesture per customer and event, ever.
    """

    customer_id: str
    reason: str  # outage, late_order, lost_order, defect
    event_key: str
    kind: str  # bill_credit, delivery_costs, voucher, extra_product
    amount_cents: int
    step: int  # 0 = first contact; a repeat contact goes one step up
    description: str  # in the customer's language, as on the agent's card
    status: str  # "granted" or "needs_person" (above the bot's limit: nothing granted)
    reference: Optional[str] = None  # e.g. "GW-20261122-0001"; None when not granted
    due_on: Optional[dt.date] = None  # credit on the bill, money back, voucher or extra sent by
    voucher_code: Optional[str] = None
    valid_until: Optional[dt.date] = None  # voucher
    extra_category: Optional[str] = None  # defect: the category the extra comes from
    hours: Optional[int] = None  # outage: whole hours without service
    promise_id: Optional[int] = None
    already_granted: bool = False  # True: this gesture was granted in an earlier request
    approved_by: Optional[str] = None  # the person who approved it above the bot's limit


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

    def outages_since(self, postcode: str, since: dt.datetime) -> List[Outage]:
        """Outages at this postcode active at some moment from ``since`` until now (resolved ones
        included): what a customer may be owed a gesture for."""

    # -- remedies ------------------------------------------------------------------------
    def ship_replacement(self, customer_id: str, purchase_id: int) -> Shipment:
        """Ships a replacement now and schedules collection; NotEligible outside warranty."""

    def refund_policy(self) -> RefundPolicy:
        """The refund rules."""

    def refund(self, customer_id: str, order_number: str) -> Refund:
        """Refunds the order now; NotEligible (with the reason) outside policy."""

    def reset_password(self, customer_id: str) -> PasswordReset:
        """Unlocks the account if locked and sends a reset link to the registered e-mail."""

    # -- orders: cancel, change -----------------------------------------------------------
    def cancel_order(self, customer_id: str, order_number: str, conversation_id: Optional[str] = None) -> Cancellation:
        """Cancels a processing order now (refunded, with a reference) or starts the return of a
        shipped one (a return with its reference and label). Idempotent. NotFound for someone
        else's order; NotEligible "delivered" (a return/refund instead) or "lost" (a person)."""

    def change_order(
        self,
        customer_id: str,
        order_number: str,
        address: Optional[str] = None,
        delivery_day: Optional[dt.date] = None,
    ) -> OrderChange:
        """Changes the delivery address and/or day of an order that has not shipped.

        NotEligible "already_shipped" once it has; ValueError for an address or day that
        cannot be used (wrong country, no street, weekend, past, too far ahead).
        """

    # -- invoices, payments ----------------------------------------------------------------
    def invoices(self, customer_id: str) -> List[Invoice]:
        """The customer's invoices, newest first."""

    def send_invoice_copy(self, customer_id: str, invoice_number: str) -> InvoiceCopy:
        """E-mails a copy to the address on file; NotFound for someone else's invoice."""

    def failed_payment(self, customer_id: str, order_number: Optional[str] = None) -> FailedPayment:
        """The latest failed, still unpaid payment (of this order); NotFound when there is none."""

    def refund_duplicate_charge(
        self, customer_id: str, order_number: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> DuplicateChargeRefund:
        """Finds a double charge (of this order) and refunds it at once; a charge refunded before
        is returned again. NotFound when no double charge is found (a person looks into it)."""

    # -- account, newsletter, feedback -------------------------------------------------------
    def signup_link(self) -> SignupLink:
        """A sign-up link with a one-time token that expires (no personal data in or behind it)."""

    def redeem_signup_token(self, token: str) -> bool:
        """True the first time a valid, unexpired token is used (the shop calls it); else False."""

    def request_account_deletion(self, customer_id: str, conversation_id: Optional[str] = None) -> PrivacyRequest:
        """Records an erasure request with its due date, and a promise; an open one is returned again."""

    def unsubscribe_newsletter(self, customer_id: str) -> NewsletterUnsubscription:
        """Takes the customer off the newsletter at once; idempotent."""

    def subscribe_newsletter(self, customer_id: str) -> bool:
        """Puts the customer on the newsletter; False when they already were on it."""

    def add_feedback(
        self,
        text: str,
        language: str,
        channel: str,
        customer_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Feedback:
        """Keeps the feedback verbatim for the team (customer optional)."""

    def feedback(self, since: Optional[dt.datetime] = None) -> List[Feedback]:
        """Feedback for the team, newest first."""

    def erase_feedback(self, feedback_id: int) -> bool:
        """Deletes one piece of feedback; False when it does not exist."""

    # -- goodwill ----------------------------------------------------------------------------
    def service_policy(self) -> ServicePolicy:
        """The operator's goodwill and service policy; BackendUnavailable (caused by a
        PolicyError naming the key) when the file is missing or invalid."""

    def grant_goodwill(
        self,
        customer_id: str,
        reason: str,
        event_id: str,
        repeat_contact: bool = False,
        conversation_id: Optional[str] = None,
        approved_by: Optional[str] = None,
    ) -> Goodwill:
        """A proportionate gesture for an outage (``event_id`` the outage id), a late or lost order
        (the order number) or a defect in warranty (the purchase id), within the policy. For a
        defect the gesture is the extra that comes with the replacement (``ship_replacement``
        ships the product itself).

        Granted with a promise; granted once per customer and event (asked again, the same
        gesture with ``already_granted``). Above the bot's limit: status "needs_person", nothing
        granted, unless ``approved_by`` names the person who approves it. NotFound for someone
        else's event; NotEligible with the reason when the policy gives nothing.
        """

    def goodwill(self, customer_id: str) -> List[Goodwill]:
        """The gestures granted to the customer, oldest first."""

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

    def settle_promise(self, customer_id: str, promise_id: int, status: str) -> Promise:
        """Marks the customer's open promise "kept", "broken" or "cancelled" (the company's systems
        call it when they fulfil a promise or give up on it); a promise settled before is returned
        unchanged. NotFound for an unknown or someone else's promise; ValueError for another status.
        """

    def promises(self, customer_id: str, status: Optional[str] = None) -> List[Promise]:
        """The customer's promises, oldest due first."""

    # -- privacy -------------------------------------------------------------------------
    def erase_customer(self, customer_id: str) -> Dict[str, int]:
        """Deletes the customer and every record about them (AVG/GDPR right to erasure):
        orders, purchases, replacements, refunds, returns, order changes, invoices and the copies
        sent, payments, password resets, privacy requests, the newsletter subscription,
        their feedback, goodwill, promises.

        Returns the number of records deleted per kind (``{}`` when the customer is unknown);
        idempotent. ``scripts/erase_customer.py`` calls it after erasing the conversations.
        """
