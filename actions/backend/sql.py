"""A :class:`CustomerBackend` on a SQL database (SQLite for demos, PostgreSQL in production).

Point ``KLANTCONTACT_BACKEND`` at ``actions.backend.sql:SqlBackend`` and ``KLANTCONTACT_DB_URL``
at the database (default: ``sqlite:///<repo>/var/helder.db``). Create and fill the tables with
``python -m actions.backend.seed``.

Nothing connects at import or construction time: the engine is built on first use, so a down
database only costs the conversation that needs it (as :class:`BackendUnavailable`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from actions.backend.base import (
    BackendUnavailable,
    Cancellation,
    Customer,
    DuplicateChargeRefund,
    FailedPayment,
    Feedback,
    Goodwill,
    Invoice,
    InvoiceCopy,
    NewsletterUnsubscription,
    NotEligible,
    NotFound,
    Order,
    OrderChange,
    OrderReturn,
    Outage,
    PasswordReset,
    PrivacyRequest,
    Promise,
    Purchase,
    Refund,
    RefundPolicy,
    Shipment,
    SignupLink,
)
from actions.backend.policy import PolicyError, PolicyFile, ServicePolicy
from actions.backend.promise_events import SETTLED_STATUSES, PromiseEvent, PromiseEventPublisher
from actions.identifier_parsing import EMAIL, Identifier, mask_email, normalise_phone, parse_postcode
from actions.money import format_money

logger = logging.getLogger(__name__)

ENV_URL = "KLANTCONTACT_DB_URL"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "helder.db"

# Seconds: a conversation waits at most this long before we apologise and hand over.
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 3000

CARRIERS = {"NL": "PostNL", "BE": "bpost", "GB": "Royal Mail"}
TIMEZONES = {"NL": "Europe/Amsterdam", "BE": "Europe/Brussels", "GB": "Europe/London"}
REFUND_PAYOUT_DAYS = 5
PHONE_E164 = re.compile(r"\+\d{8,15}")
POSTCODE_FORMATS = {  # a postcode must fit the customer's country, or it is a typo
    "NL": re.compile(r"\d{4} [A-Z]{2}"),
    "BE": re.compile(r"\d{4}"),
    "GB": re.compile(r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}"),
}

# What a goodwill gesture is for, per reason: the event key is "<subject>:<id>".
GOODWILL_SUBJECTS = {"outage": "outage", "late_order": "order", "lost_order": "order", "defect": "purchase"}
MAX_FEEDBACK_CHARS = 20_000
SERVICE_NAMES_NL = {"internet": "internet", "tv": "tv", "mobile": "mobiel netwerk"}
SERVICE_NAMES_EN = {"internet": "internet", "tv": "TV", "mobile": "mobile service"}

T = TypeVar("T")
UTC = dt.timezone.utc
#: ``SqlBackend(promise_events=...)``'s default: the publisher the environment configures, if any.
FROM_ENVIRONMENT: Any = object()
#: Where a transaction's session collects its promise events until the commit.
_PROMISE_EVENTS = "promise_events"
# SQLAlchemy 1.4 (Rasa's pin) builds the declarative base at run time: no static type for mypy.
Base: Any = declarative_base()


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive datetime is taken as local time (Python's own convention)."""
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[dt.datetime], dialect: Any) -> Optional[dt.datetime]:
        if value is None:
            return None
        value = _as_utc(value)
        # SQLite compares datetimes as text: store them all as naive UTC so they sort right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[dt.datetime], dialect: Any) -> Optional[dt.datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


# -- tables -------------------------------------------------------------------------------


class CustomerRow(Base):
    __tablename__ = "customers"

    id = Column(String(16), primary_key=True)  # the 8-digit customer number
    name = Column(String(200), nullable=False)
    email = Column(String(254), nullable=False, unique=True)  # lower case
    phone = Column(String(20), nullable=False, index=True)  # normalised, +31...
    postcode = Column(String(10), nullable=False)  # normalised, "3511 AB"
    street = Column(String(200), nullable=False, default="")
    city = Column(String(100), nullable=False, default="")
    country = Column(String(2), nullable=False)
    language = Column(String(5), nullable=False, default="nl")
    account_locked = Column(Boolean, nullable=False, default=False)


class OrderRow(Base):
    __tablename__ = "orders"

    number = Column(String(16), primary_key=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False)  # processing, shipped, late, delivered, lost, cancelled
    ordered_on = Column(Date, nullable=False)
    expected_on = Column(Date)
    delivered_on = Column(Date)
    carrier = Column(String(40))
    tracking = Column(String(60))
    total_cents = Column(Integer, nullable=False, default=0)


class PurchaseRow(Base):
    """One order line: a product with its warranty."""

    __tablename__ = "purchases"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    order_number = Column(String(16), ForeignKey("orders.number"), nullable=False, index=True)
    product = Column(String(200), nullable=False)
    category = Column(String(60), nullable=False)
    price_cents = Column(Integer, nullable=False)
    purchased_on = Column(Date, nullable=False)
    warranty_until = Column(Date)  # NULL: no warranty
    delivered_on = Column(Date)
    returned = Column(Boolean, nullable=False, default=False)


class OutageRow(Base):
    __tablename__ = "outages"

    id = Column(Integer, primary_key=True, autoincrement=True)
    seed_key = Column(String(60), unique=True)  # only for demo rows, so re-seeding updates them
    service = Column(String(20), nullable=False)
    started_at = Column(UtcDateTime, nullable=False)
    expected_fix_at = Column(UtcDateTime)
    resolved_at = Column(UtcDateTime)
    description_nl = Column(Text, nullable=False)
    description_en = Column(Text, nullable=False)


class OutagePostcodeRow(Base):
    """A 4-digit area ("3581"), a UK outward code ("SW1A") or a full postcode an outage hits."""

    __tablename__ = "outage_postcodes"

    outage_id = Column(Integer, ForeignKey("outages.id", ondelete="CASCADE"), primary_key=True)
    postcode = Column(String(10), primary_key=True, index=True)


class ShipmentRow(Base):
    __tablename__ = "shipments"

    reference = Column(String(20), primary_key=True)  # RV-YYYYMMDD-NNNN
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    purchase_id = Column(Integer, ForeignKey("purchases.id"), nullable=False)
    carrier = Column(String(40), nullable=False)
    expected_on = Column(Date, nullable=False)
    pickup_on = Column(Date)
    status = Column(String(20), nullable=False, default="open")
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)


# One open replacement per purchase, also when two requests arrive at once.
Index(
    "uq_shipments_open_purchase", ShipmentRow.purchase_id, unique=True,
    sqlite_where=ShipmentRow.status == "open", postgresql_where=ShipmentRow.status == "open",
)


class RefundRow(Base):
    __tablename__ = "refunds"

    reference = Column(String(20), primary_key=True)  # RF-YYYYMMDD-NNNN
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    order_number = Column(String(16), ForeignKey("orders.number"), nullable=False, unique=True)
    amount_cents = Column(Integer, nullable=False)
    due_on = Column(Date, nullable=False)
    return_label = Column(String(20))
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class RefundPolicyRow(Base):
    """A single row (id 1); defaults of :class:`RefundPolicy` when it is missing."""

    __tablename__ = "refund_policy"

    id = Column(Integer, primary_key=True)
    days_after_delivery = Column(Integer, nullable=False)
    max_amount_cents = Column(Integer, nullable=False)


class PasswordResetRow(Base):
    __tablename__ = "password_resets"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    email = Column(String(254), nullable=False)
    unlocked = Column(Boolean, nullable=False)
    sent_at = Column(UtcDateTime, nullable=False)


class PromiseRow(Base):
    __tablename__ = "promises"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    kind = Column(String(20), nullable=False)
    description = Column(Text, nullable=False)
    reference = Column(String(40))
    due_at = Column(UtcDateTime, nullable=False)
    status = Column(String(20), nullable=False, default="open")
    conversation_id = Column(String(100))
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class OrderReturnRow(Base):
    """A return of a whole order (a shipped order cancelled); one per order."""

    __tablename__ = "order_returns"

    reference = Column(String(20), primary_key=True)  # RT-YYYYMMDD-NNNN
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    order_number = Column(String(16), ForeignKey("orders.number"), nullable=False, unique=True)
    return_label = Column(String(20), nullable=False)
    return_by = Column(Date, nullable=False)
    amount_cents = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False, default="open")
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class OrderDeliveryRow(Base):
    """Delivery address and day of an order when they differ from the customer's address / first day.

    A table of its own, so databases made before it only gain a table (``create_all``).
    """

    __tablename__ = "order_deliveries"

    order_number = Column(String(16), ForeignKey("orders.number"), primary_key=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    street = Column(String(200), nullable=False)
    postcode = Column(String(10), nullable=False)
    city = Column(String(100), nullable=False, default="")
    delivery_day = Column(Date)
    changed_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class InvoiceRow(Base):
    __tablename__ = "invoices"

    number = Column(String(20), primary_key=True)  # F2026-004711
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    order_number = Column(String(16), ForeignKey("orders.number"), index=True)
    amount_cents = Column(Integer, nullable=False)
    issued_on = Column(Date, nullable=False)
    due_on = Column(Date, nullable=False)
    status = Column(String(20), nullable=False, default="open")  # open, paid


class InvoiceCopyRow(Base):
    """A copy of an invoice e-mailed to the customer (the e-mail service picks these up)."""

    __tablename__ = "invoice_copies"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    invoice_number = Column(String(20), ForeignKey("invoices.number"), nullable=False)
    sent_to = Column(String(254), nullable=False)
    sent_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class PaymentRow(Base):
    """One payment attempt or charge for an order."""

    __tablename__ = "payments"

    id = Column(Integer, primary_key=True, autoincrement=True)
    seed_key = Column(String(60), unique=True)  # only for demo rows, so re-seeding updates them
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    order_number = Column(String(16), ForeignKey("orders.number"), nullable=False, index=True)
    amount_cents = Column(Integer, nullable=False)
    method = Column(String(20), nullable=False)  # ideal, card, bancontact, paypal
    status = Column(String(20), nullable=False)  # paid, failed, refunded
    failure_reason = Column(String(40))
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)
    refund_reference = Column(String(20), unique=True)  # RC-YYYYMMDD-NNNN, a refunded double charge
    refund_due_on = Column(Date)


class SignupTokenRow(Base):
    """A one-time sign-up token, stored only as its SHA-256 (no personal data)."""

    __tablename__ = "signup_tokens"

    token_hash = Column(String(64), primary_key=True)
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)
    expires_at = Column(UtcDateTime, nullable=False)
    used_at = Column(UtcDateTime)


class PrivacyRequestRow(Base):
    __tablename__ = "privacy_requests"

    reference = Column(String(20), primary_key=True)  # PV-YYYYMMDD-NNNN
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    kind = Column(String(20), nullable=False)  # erasure
    requested_at = Column(UtcDateTime, nullable=False, default=_utcnow)
    due_on = Column(Date, nullable=False)
    status = Column(String(20), nullable=False, default="open")
    conversation_id = Column(String(100))


# One open request of a kind per customer, also when two arrive at once.
Index(
    "uq_privacy_requests_open", PrivacyRequestRow.customer_id, PrivacyRequestRow.kind, unique=True,
    sqlite_where=PrivacyRequestRow.status == "open", postgresql_where=PrivacyRequestRow.status == "open",
)


class NewsletterRow(Base):
    __tablename__ = "newsletter_subscriptions"

    customer_id = Column(String(16), ForeignKey("customers.id"), primary_key=True)
    subscribed = Column(Boolean, nullable=False)
    changed_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class FeedbackRow(Base):
    """Feedback, verbatim; the customer is optional (anonymous feedback is kept too)."""

    __tablename__ = "feedback"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), index=True)
    language = Column(String(5), nullable=False)
    channel = Column(String(20), nullable=False)
    text = Column(Text, nullable=False)
    conversation_id = Column(String(100), index=True)
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow, index=True)


class GoodwillRow(Base):
    """A gesture granted; the unique (customer, event) pair is what makes it once per event."""

    __tablename__ = "goodwill"
    __table_args__ = (UniqueConstraint("customer_id", "event_key", name="uq_goodwill_customer_event"),)

    reference = Column(String(20), primary_key=True)  # GW-YYYYMMDD-NNNN
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    reason = Column(String(20), nullable=False)
    event_key = Column(String(60), nullable=False)
    kind = Column(String(20), nullable=False)
    amount_cents = Column(Integer, nullable=False)
    step = Column(Integer, nullable=False)
    description = Column(Text, nullable=False)
    due_on = Column(Date, nullable=False)
    voucher_code = Column(String(30), unique=True)
    valid_until = Column(Date)
    extra_category = Column(String(60))
    hours = Column(Integer)
    promise_id = Column(Integer, ForeignKey("promises.id"))
    approved_by = Column(String(100))
    conversation_id = Column(String(100))
    created_at = Column(UtcDateTime, nullable=False, default=_utcnow)


class ProblemContactRow(Base):
    """A contact about an event that may earn goodwill: a later one in another conversation is a repeat."""

    __tablename__ = "problem_contacts"

    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(16), ForeignKey("customers.id"), nullable=False, index=True)
    event_key = Column(String(60), nullable=False)
    conversation_id = Column(String(100))
    contacted_at = Column(UtcDateTime, nullable=False, default=_utcnow)


# -- conversions --------------------------------------------------------------------------


def _customer(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id, name=row.name, email=row.email, phone=row.phone, postcode=row.postcode,
        country=row.country, language=row.language, account_locked=row.account_locked,
        street=row.street or "", city=row.city or "",
    )


# A customer's orders, newest first, and the products on them, in order (asked on every order
# question: built once, as _OUTAGES_AT).
_ORDERS_OF = (select(OrderRow).where(OrderRow.customer_id == bindparam("customer_id"))
              .order_by(OrderRow.ordered_on.desc(), OrderRow.number.desc()))
_PRODUCTS_ON = (select(PurchaseRow.order_number, PurchaseRow.product)
                .where(PurchaseRow.order_number.in_(bindparam("keys", expanding=True)))
                .order_by(PurchaseRow.id))


def _order(row: OrderRow, items: List[str]) -> Order:
    return Order(
        number=row.number, customer_id=row.customer_id, items=items,
        status=row.status, ordered_on=row.ordered_on, expected_on=row.expected_on,
        delivered_on=row.delivered_on, carrier=row.carrier, tracking=row.tracking,
        total_cents=row.total_cents,
    )


def _purchase(row: PurchaseRow) -> Purchase:
    return Purchase(
        id=row.id, customer_id=row.customer_id, order_number=row.order_number, product=row.product,
        category=row.category, price_cents=row.price_cents, purchased_on=row.purchased_on,
        warranty_until=row.warranty_until, delivered_on=row.delivered_on, returned=row.returned,
    )


# The outages at some postcode areas, active at ``started_by`` and not resolved by
# ``resolved_after``: asked on every identification and outage report, so the statement is built
# once (building it, with its subquery and loader option, cost more than running it: 1.1 ms a call).
_OUTAGES_AT = (
    select(OutageRow)
    .where(
        OutageRow.id.in_(select(OutagePostcodeRow.outage_id)
                         .where(OutagePostcodeRow.postcode.in_(bindparam("areas", expanding=True)))),
        OutageRow.started_at <= bindparam("started_by"),
        (OutageRow.resolved_at.is_(None)) | (OutageRow.resolved_at > bindparam("resolved_after")),
    )
    .order_by(OutageRow.started_at, OutageRow.id)
)
# Their areas, in one more query (what ``selectinload`` does, without building it every time).
_AREAS_OF = select(OutagePostcodeRow.outage_id, OutagePostcodeRow.postcode).where(
    OutagePostcodeRow.outage_id.in_(bindparam("keys", expanding=True)))


def _grouped(session: Session, statement: Any, keys: List[Any]) -> Dict[Any, List[str]]:
    """The values of each key from ``statement`` (rows of key and value, ``keys`` bound as "keys")."""
    found: Dict[Any, List[str]] = {key: [] for key in keys}
    for key, value in session.execute(statement, {"keys": keys}):
        found[key].append(value)
    return found


def _outage(row: OutageRow, postcodes: List[str]) -> Outage:
    return Outage(
        id=row.id, service=row.service, postcodes=sorted(postcodes),
        started_at=row.started_at, expected_fix_at=row.expected_fix_at,
        description_nl=row.description_nl, description_en=row.description_en, resolved_at=row.resolved_at,
    )


def _shipment(row: ShipmentRow) -> Shipment:
    return Shipment(
        reference=row.reference, customer_id=row.customer_id, purchase_id=row.purchase_id,
        carrier=row.carrier, expected_on=row.expected_on, pickup_on=row.pickup_on,
    )


def _refund(row: RefundRow) -> Refund:
    return Refund(
        reference=row.reference, customer_id=row.customer_id, order_number=row.order_number,
        amount_cents=row.amount_cents, due_on=row.due_on, return_label=row.return_label,
    )


def _promise(row: PromiseRow) -> Promise:
    return Promise(
        id=row.id, customer_id=row.customer_id, kind=row.kind, description=row.description,
        reference=row.reference, due_at=row.due_at, status=row.status,
        conversation_id=row.conversation_id,
    )


def _order_return(row: OrderReturnRow) -> OrderReturn:
    return OrderReturn(
        reference=row.reference, customer_id=row.customer_id, order_number=row.order_number,
        return_label=row.return_label, return_by=row.return_by, amount_cents=row.amount_cents, status=row.status,
    )


def _invoice(row: InvoiceRow) -> Invoice:
    return Invoice(
        number=row.number, customer_id=row.customer_id, order_number=row.order_number,
        amount_cents=row.amount_cents, issued_on=row.issued_on, due_on=row.due_on, status=row.status,
    )


def _duplicate_refund(row: PaymentRow) -> DuplicateChargeRefund:
    return DuplicateChargeRefund(
        reference=row.refund_reference, customer_id=row.customer_id, order_number=row.order_number,
        amount_cents=row.amount_cents, charged_at=row.created_at, due_on=row.refund_due_on,
    )


def _privacy_request(row: PrivacyRequestRow) -> PrivacyRequest:
    return PrivacyRequest(
        reference=row.reference, customer_id=row.customer_id, kind=row.kind, requested_at=row.requested_at,
        due_on=row.due_on, status=row.status,
    )


def _feedback(row: FeedbackRow) -> Feedback:
    return Feedback(
        id=row.id, text=row.text, language=row.language, channel=row.channel, created_at=row.created_at,
        customer_id=row.customer_id, conversation_id=row.conversation_id,
    )


def _goodwill(row: GoodwillRow, already_granted: bool = False) -> Goodwill:
    return Goodwill(
        customer_id=row.customer_id, reason=row.reason, event_key=row.event_key, kind=row.kind,
        amount_cents=row.amount_cents, step=row.step, description=row.description, status="granted",
        reference=row.reference, due_on=row.due_on, voucher_code=row.voucher_code, valid_until=row.valid_until,
        extra_category=row.extra_category, hours=row.hours, promise_id=row.promise_id,
        already_granted=already_granted, approved_by=row.approved_by,
    )


# -- small rules --------------------------------------------------------------------------


def next_working_day(day: dt.date) -> dt.date:
    """The first Monday-to-Friday after ``day`` (carriers do not deliver at the weekend)."""
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def end_of_day(day: dt.date, country: str) -> dt.datetime:
    """23:59:59 on ``day`` in the customer's country, as aware UTC."""
    try:
        zone: dt.tzinfo = ZoneInfo(TIMEZONES.get(country, "Europe/Amsterdam"))
    except ZoneInfoNotFoundError:  # no tz database installed: UTC is a safe approximation
        zone = UTC
    return dt.datetime.combine(day, dt.time(23, 59, 59), zone).astimezone(UTC)


def postcode_areas(postcode: str) -> List[str]:
    """What an outage may list for this postcode: the postcode itself and its area."""
    normalised = parse_postcode(postcode)
    if normalised is None:
        return []
    areas = {normalised}
    if normalised[:4].isdigit():
        areas.add(normalised[:4])  # NL "3581 KP" → "3581"; BE "9000" stays "9000"
    else:
        areas.add(normalised.split()[0])  # UK "SW1A 1AA" → outward code "SW1A"
    return sorted(areas)


def _in(language: str, nl: str, en: str) -> str:
    """The promise text in the customer's language (what the agent's card shows)."""
    return en if language == "en" else nl


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _next_bill_day(today: dt.date, bill_day: int) -> dt.date:
    """The first ``bill_day`` of a month after ``today``: the next bill."""
    if today.day < bill_day:
        return today.replace(day=bill_day)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return dt.date(year, month, bill_day)


def _parse_address(value: str, country: str) -> Tuple[str, str]:
    """(postcode, street) from an address typed in the customer's country; ValueError otherwise."""
    value = (value or "").strip()
    postcode = parse_postcode(value)
    pattern = POSTCODE_FORMATS.get(country)
    if postcode is None or (pattern is not None and not pattern.fullmatch(postcode)):
        raise ValueError(f"no {country} postcode in the address")
    street = _without_postcode(value, postcode)
    if not street:
        raise ValueError("no street in the address")
    return postcode, street


class _Conflict(BackendUnavailable):
    """A unique constraint hit by a concurrent request; the operation is retried."""


# -- the backend --------------------------------------------------------------------------


def _write_ahead_log(cursor: Any, database: Optional[str]) -> None:
    """A database file in write-ahead-log mode (stays so; a no-op once it is).

    Readers then no longer wait for a writer (the backend's threads, the seed and erasure scripts),
    and a commit syncs one file instead of a journal and the database: 0.2 instead of 0.7 ms on
    this repository's test machine. Still durable (``synchronous`` stays FULL). A database another
    connection holds locked stays in its rollback journal until the next connection: not an error.
    """
    if not database or database == ":memory:":
        return
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:
        logger.info("SQLite database stays in its rollback journal for now: %s", error)


class SqlBackend:
    """Implements :class:`actions.backend.base.CustomerBackend` on SQLAlchemy (SQLite, PostgreSQL)."""

    def __init__(self, url: Optional[str] = None, policy_path: Optional[Path] = None,
                 promise_events: Optional[PromiseEventPublisher] = FROM_ENVIRONMENT) -> None:
        """``url`` defaults to ``$KLANTCONTACT_DB_URL``, else ``sqlite:///<repo>/var/helder.db``;
        ``policy_path`` to ``$KLANTCONTACT_POLICY_FILE``, else ``actions/backend/policy.yml``;
        ``promise_events`` (where the promises' lifecycle goes for the insights report) to the
        Redis the environment names, else none (:mod:`actions.backend.promise_events`)."""
        self.url: str = url or os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_PATH}"
        self._policy_file = PolicyFile(policy_path)
        self.promise_events: Optional[PromiseEventPublisher] = (
            PromiseEventPublisher.from_environment() if promise_events is FROM_ENVIRONMENT else promise_events)
        self._engine: Optional[Engine] = None
        self._sessions: Optional[sessionmaker] = None
        self._lock = threading.Lock()  # actions may run in threads: build one engine only

    # -- plumbing -----------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine, created on first use with short timeouts (never at import time)."""
        with self._lock:
            if self._engine is None:
                engine = self._create_engine()
                self._sessions = sessionmaker(engine, future=True, expire_on_commit=False)
                self._engine = engine
        return self._engine

    def _create_engine(self) -> Engine:
        url = make_url(self.url)
        # hide_parameters: error messages (and so logs) must not carry customers' e-mail or phone.
        options: Dict[str, Any] = {"future": True, "hide_parameters": True}
        if url.get_backend_name() == "sqlite":
            if url.database == str(DEFAULT_SQLITE_PATH):
                try:
                    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise BackendUnavailable(f"cannot create {DEFAULT_SQLITE_PATH.parent}: {exc}") from exc
            options["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}  # wait for a writer's lock
            if url.database and url.database != ":memory:":
                # Pooled connections, as SQLAlchemy 2.0 does for a database file (1.4 opens a new
                # one for every transaction): 0.3-0.5 ms less per backend call. The pool hands a
                # connection to one thread at a time, so it may move between the backend's threads.
                options["poolclass"] = QueuePool
                options["connect_args"]["check_same_thread"] = False
        elif url.get_backend_name() == "postgresql":
            options["connect_args"] = {
                "connect_timeout": CONNECT_TIMEOUT_S,
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            }
            options.update(pool_pre_ping=True, pool_timeout=CONNECT_TIMEOUT_S)
        engine = create_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            # SQLite ignores foreign keys unless asked, per connection.
            @event.listens_for(engine, "connect")
            def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                _write_ahead_log(cursor, url.database)
                cursor.close()
        return engine

    def dispose(self) -> None:
        """Closes pooled connections (tests drop their database afterwards)."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction; database failures surface as :class:`BackendUnavailable`.
        The promise events the work recorded are published once it has committed."""
        engine = self.engine
        assert self._sessions is not None
        try:
            with self._sessions() as session:
                with session.begin():
                    yield session
                self._publish(session.info.pop(_PROMISE_EVENTS, []))
        except IntegrityError as exc:
            raise _Conflict(f"conflicting write: {exc.orig}") from exc
        except (DBAPIError, PoolTimeoutError) as exc:
            logger.warning("database %s unavailable: %s", engine.url.render_as_string(hide_password=True),
                           str(getattr(exc, "orig", exc)).strip())
            raise BackendUnavailable(f"database unavailable: {getattr(exc, 'orig', exc)}") from exc

    def _publish(self, recorded: List[Tuple[str, PromiseRow, dt.datetime]]) -> None:
        """Publishes committed promise events (see :meth:`_record`)."""
        if self.promise_events is not None and recorded:
            self.promise_events.publish([
                PromiseEvent(name, row.id, row.kind, row.due_at, at, row.conversation_id)
                for name, row, at in recorded])

    def _run(self, work: Callable[[Session], T], attempts: int = 1) -> T:
        """``work`` in a transaction, retried when a concurrent request took the same reference."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except _Conflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def create_schema(self) -> None:
        """Creates the tables that are missing (existing data is left alone)."""
        try:
            Base.metadata.create_all(self.engine)
        except (DBAPIError, PoolTimeoutError) as exc:
            raise BackendUnavailable(f"database unavailable: {getattr(exc, 'orig', exc)}") from exc

    def _today(self) -> dt.date:
        """The business date; a method so tests can move the clock."""
        return dt.date.today()

    @staticmethod
    def _customer_row(session: Session, customer_id: str) -> CustomerRow:
        row = session.get(CustomerRow, customer_id)
        if row is None:
            raise NotFound(f"customer {customer_id}")
        return row

    @staticmethod
    def _next_reference(session: Session, column: Any, prefix: str) -> str:
        """``prefix-NNNN`` with the day's next number; a race is caught by the primary key."""
        taken = session.scalars(select(column).where(column.like(f"{prefix}-%"))).all()
        numbers = [int(ref.rsplit("-", 1)[1]) for ref in taken if ref.rsplit("-", 1)[1].isdigit()]
        return f"{prefix}-{max(numbers, default=0) + 1:04d}"

    # -- customers ----------------------------------------------------------------------

    @staticmethod
    def _find(session: Session, identifier: Identifier) -> Optional[CustomerRow]:
        value = identifier.value.strip()
        if identifier.kind == "customer_number":
            return session.get(CustomerRow, value)
        if identifier.kind == "email":
            query = select(CustomerRow).where(func.lower(CustomerRow.email) == value.lower())
        elif identifier.kind == "phone":
            query = select(CustomerRow).where(CustomerRow.phone == normalise_phone(value))
        else:
            return None
        return session.scalars(query.order_by(CustomerRow.id).limit(1)).first()

    def find_customer(self, identifier: Identifier) -> Optional[Customer]:
        """The customer with this customer number, e-mail or phone (no verification)."""
        def work(session: Session) -> Optional[Customer]:
            row = self._find(session, identifier)
            return _customer(row) if row else None
        return self._run(work)

    def verify(self, identifier: Identifier, postcode: str) -> Optional[Customer]:
        """The customer matching both the identifier and the postcode, else None."""
        given = parse_postcode(postcode)
        if given is None:
            return None
        customer = self.find_customer(identifier)
        if customer is None or parse_postcode(customer.postcode) != given:
            return None
        return customer

    def get_customer(self, customer_id: str) -> Optional[Customer]:
        """The customer with this id, else None."""
        return self.find_customer(Identifier("customer_number", customer_id))

    def find_by_phone(self, phone: str) -> Optional[Customer]:
        """The customer with this phone number (any common notation), else None."""
        return self.find_customer(Identifier("phone", phone))

    def update_contact_details(self, customer_id: str, field: str, value: str) -> Customer:
        """Sets ``field`` ("email", "phone" or "address"); ValueError for a bad field or value."""
        if field not in ("email", "phone", "address"):
            raise ValueError(f"unknown contact field {field!r}")
        value = (value or "").strip()

        def work(session: Session) -> Customer:
            row = self._customer_row(session, customer_id)
            if field == "email":
                email = value.lower()
                if not EMAIL.fullmatch(email):
                    raise ValueError("not an e-mail address")
                taken = session.scalars(
                    select(CustomerRow.id).where(func.lower(CustomerRow.email) == email, CustomerRow.id != customer_id)
                ).first()
                if taken:  # deliberately not saying by whom
                    raise ValueError("e-mail address already in use")
                row.email = email
            elif field == "phone":
                phone = normalise_phone(value, row.country)
                if not PHONE_E164.fullmatch(phone):
                    raise ValueError("not a phone number")
                row.phone = phone
            else:
                row.postcode, row.street = _parse_address(value, row.country)
            session.flush()
            return _customer(row)

        return self._run(work)

    # -- orders, products ---------------------------------------------------------------

    def orders(self, customer_id: str) -> List[Order]:
        """The customer's orders, newest first."""
        def work(session: Session) -> List[Order]:
            rows = session.scalars(_ORDERS_OF, {"customer_id": customer_id}).all()
            items = _grouped(session, _PRODUCTS_ON, [row.number for row in rows]) if rows else {}
            return [_order(row, items[row.number]) for row in rows]
        return self._run(work)

    def purchases(self, customer_id: str) -> List[Purchase]:
        """The products the customer bought, newest first."""
        def work(session: Session) -> List[Purchase]:
            rows = session.scalars(
                select(PurchaseRow).where(PurchaseRow.customer_id == customer_id)
                .order_by(PurchaseRow.purchased_on.desc(), PurchaseRow.id.desc())
            ).all()
            return [_purchase(row) for row in rows]
        return self._run(work)

    # -- services -----------------------------------------------------------------------

    def outages_at(self, postcode: str, now: Optional[dt.datetime] = None) -> List[Outage]:
        """Outages active at ``now`` (default: now) matching the postcode's area or the postcode.

        Active: started, and not resolved (or resolved only after ``now``, so asking about a
        moment in the past gives the answer of that moment). A naive ``now`` is local time.
        """
        moment = _as_utc(now) if now is not None else _utcnow()
        return self._outages(postcode, moment, moment)

    def outages_since(self, postcode: str, since: dt.datetime) -> List[Outage]:
        """Outages at the postcode active at some moment from ``since`` until now, resolved ones too."""
        return self._outages(postcode, _utcnow(), _as_utc(since))

    def _outages(self, postcode: str, started_by: dt.datetime, resolved_after: dt.datetime) -> List[Outage]:
        areas = postcode_areas(postcode)
        if not areas:
            return []

        def work(session: Session) -> List[Outage]:
            rows = session.scalars(_OUTAGES_AT, {"areas": list(areas), "started_by": started_by,
                                                 "resolved_after": resolved_after}).all()
            postcodes = _grouped(session, _AREAS_OF, [row.id for row in rows]) if rows else {}
            return [_outage(row, postcodes[row.id]) for row in rows]

        return self._run(work)

    # -- remedies -----------------------------------------------------------------------

    def ship_replacement(self, customer_id: str, purchase_id: int) -> Shipment:
        """Ships a replacement (next working day) and collects the old one on delivery.

        Idempotent: a purchase with an open replacement gets that shipment back. NotFound for
        someone else's purchase; NotEligible "not_delivered", "returned" or "out_of_warranty".
        """
        def work(session: Session) -> Shipment:
            purchase = session.get(PurchaseRow, purchase_id)
            if purchase is None or purchase.customer_id != customer_id:
                raise NotFound(f"purchase {purchase_id}")
            existing = session.scalars(
                select(ShipmentRow).where(ShipmentRow.purchase_id == purchase_id, ShipmentRow.status == "open")
            ).first()
            if existing is not None:
                return _shipment(existing)
            today = self._today()
            if purchase.delivered_on is None:
                raise NotEligible("not_delivered")
            if purchase.returned:
                raise NotEligible("returned")
            if not _purchase(purchase).in_warranty(today):
                raise NotEligible("out_of_warranty")
            customer = self._customer_row(session, customer_id)
            expected_on = next_working_day(today)
            row = ShipmentRow(
                reference=self._next_reference(session, ShipmentRow.reference, f"RV-{today:%Y%m%d}"),
                customer_id=customer_id, purchase_id=purchase_id,
                carrier=CARRIERS.get(customer.country, "PostNL"),
                expected_on=expected_on, pickup_on=expected_on, status="open",
            )
            session.add(row)
            if customer.language == "en":
                text = (f"Replacement {purchase.product} delivered by {row.carrier} on {expected_on:%d-%m-%Y}; "
                        "the old one is collected at the same time.")
            else:
                text = (f"Vervangende {purchase.product} wordt op {expected_on:%d-%m-%Y} door {row.carrier} "
                        "bezorgd; de oude wordt dan meegenomen.")
            self._insert_promise(session, customer_id, "replacement", text, end_of_day(expected_on, customer.country),
                                 row.reference, None)
            session.flush()
            return _shipment(row)

        # Retried so a concurrent request either finds this shipment or takes the next number.
        return self._run(work, attempts=3)

    def refund_policy(self) -> RefundPolicy:
        """The refund rules (the defaults when the policy row is missing)."""
        return self._run(self._policy)

    @staticmethod
    def _policy(session: Session) -> RefundPolicy:
        row = session.get(RefundPolicyRow, 1)
        if row is None:
            return RefundPolicy()
        return RefundPolicy(days_after_delivery=row.days_after_delivery, max_amount_cents=row.max_amount_cents)

    def refund(self, customer_id: str, order_number: str) -> Refund:
        """Refunds a delivered order within policy; an order refunded before gets that refund back.

        NotFound for someone else's order; NotEligible "not_delivered", "too_late",
        "amount_too_high" or "already_refunded" (returned through another channel).
        """
        def work(session: Session) -> Refund:
            order = session.get(OrderRow, order_number)
            if order is None or order.customer_id != customer_id:
                raise NotFound(f"order {order_number}")
            # Lines before the refund: a concurrent refund that marked them returned is then
            # already visible (read committed), so we return it instead of "already_refunded".
            lines = session.scalars(select(PurchaseRow).where(PurchaseRow.order_number == order_number)).all()
            existing = session.scalars(select(RefundRow).where(RefundRow.order_number == order_number)).first()
            if existing is not None:
                return _refund(existing)
            today, policy = self._today(), self._policy(session)
            if order.status != "delivered" or order.delivered_on is None:
                raise NotEligible("not_delivered")
            if (today - order.delivered_on).days > policy.days_after_delivery:
                raise NotEligible("too_late")
            if order.total_cents > policy.max_amount_cents:
                raise NotEligible("amount_too_high")
            if lines and all(line.returned for line in lines):
                raise NotEligible("already_refunded")
            reference = self._next_reference(session, RefundRow.reference, f"RF-{today:%Y%m%d}")
            row = RefundRow(
                reference=reference, customer_id=customer_id, order_number=order_number,
                amount_cents=order.total_cents, due_on=today + dt.timedelta(days=REFUND_PAYOUT_DAYS),
                # Order lines are physical products, which come back with a prepaid label.
                return_label=("RL-" + reference[3:]) if lines else None,
            )
            session.add(row)
            for line in lines:
                line.returned = True
            customer = self._customer_row(session, customer_id)
            amount = format_money(order.total_cents, customer.language, customer.country)
            if customer.language == "en":
                text = f"Refund of {amount} for order {order_number} on your account by {row.due_on:%d-%m-%Y}."
            else:
                text = (f"Terugbetaling van {amount} voor bestelling {order_number} uiterlijk {row.due_on:%d-%m-%Y} "
                        "op je rekening.")
            self._insert_promise(session, customer_id, "refund", text, end_of_day(row.due_on, customer.country),
                                 reference, None)
            session.flush()
            return _refund(row)

        return self._run(work, attempts=3)

    def reset_password(self, customer_id: str) -> PasswordReset:
        """Unlocks the account if locked and records a reset link sent to the registered e-mail."""
        def work(session: Session) -> PasswordReset:
            customer = self._customer_row(session, customer_id)
            unlocked = customer.account_locked
            customer.account_locked = False
            reset = PasswordReset(email=customer.email, unlocked=unlocked, sent_at=_utcnow())
            session.add(PasswordResetRow(customer_id=customer_id, email=reset.email, unlocked=unlocked,
                                         sent_at=reset.sent_at))
            return reset

        reset = self._run(work)
        logger.info("password reset link sent for customer %s (unlocked=%s)", customer_id, reset.unlocked)
        return reset

    # -- orders: cancel, change -------------------------------------------------------------

    def cancel_order(self, customer_id: str, order_number: str, conversation_id: Optional[str] = None) -> Cancellation:
        """Cancels a processing order now, or starts the return of one that has shipped.

        Processing: status "cancelled" and what was paid refunded at once (a refund with its
        reference and a promise; nothing to refund when no payment went through). Shipped or
        late: a return with its reference, a prepaid label and a hand-in date, refunded once
        the parcel is back (a promise). Idempotent: asked again, the same outcome comes back.
        NotFound for someone else's order; NotEligible "delivered" (return or refund instead),
        "lost" (a person) or the order's status.
        """
        policy = self.service_policy()

        def work(session: Session) -> Cancellation:
            order = self._own_order(session, customer_id, order_number)
            if order.status == "cancelled":
                refund = session.scalars(select(RefundRow).where(RefundRow.order_number == order_number)).first()
                return Cancellation(order_number, "cancelled", refund=_refund(refund) if refund else None)
            existing = session.scalars(select(OrderReturnRow).where(OrderReturnRow.order_number == order_number)).first()
            if existing is not None:
                return Cancellation(order_number, "return_started", order_return=_order_return(existing))
            if order.status not in ("processing", "shipped", "late"):
                raise NotEligible(order.status)
            # Cancelled or coming back, the order will not be delivered: a resend promised is void.
            for promise in self._open_promises(session, customer_id, kind="redelivery", reference=order_number):
                self._settle(session, promise, "cancelled")
            customer = self._customer_row(session, customer_id)
            today = self._today()
            if order.status == "processing":
                order.status = "cancelled"
                paid = self._paid_cents(session, order)
                if not paid:
                    session.flush()
                    return Cancellation(order_number, "cancelled")
                refund = RefundRow(
                    reference=self._next_reference(session, RefundRow.reference, f"RF-{today:%Y%m%d}"),
                    customer_id=customer_id, order_number=order_number, amount_cents=paid,
                    due_on=today + dt.timedelta(days=policy.refund_payout_days),
                )
                session.add(refund)
                amount = format_money(paid, customer.language, customer.country)
                text = _in(customer.language,
                           f"Bestelling {order_number} geannuleerd; {amount} uiterlijk {refund.due_on:%d-%m-%Y} "
                           "terug op de rekening.",
                           f"Order {order_number} cancelled; {amount} back on the account by {refund.due_on:%d-%m-%Y}.")
                self._insert_promise(session, customer_id, "refund", text, end_of_day(refund.due_on, customer.country),
                                     refund.reference, conversation_id)
                session.flush()
                return Cancellation(order_number, "cancelled", refund=_refund(refund))
            reference = self._next_reference(session, OrderReturnRow.reference, f"RT-{today:%Y%m%d}")
            row = OrderReturnRow(
                reference=reference, customer_id=customer_id, order_number=order_number,
                return_label=f"RL-{reference}", return_by=today + dt.timedelta(days=policy.return_days),
                amount_cents=order.total_cents, status="open",
            )
            session.add(row)
            refund_by = row.return_by + dt.timedelta(days=policy.refund_payout_days)
            amount = format_money(order.total_cents, customer.language, customer.country)
            text = _in(customer.language,
                       f"Retour {reference} van bestelling {order_number} (label {row.return_label}, inleveren voor "
                       f"{row.return_by:%d-%m-%Y}); {amount} terug binnen {policy.refund_payout_days} dagen na ontvangst.",
                       f"Return {reference} of order {order_number} (label {row.return_label}, hand in by "
                       f"{row.return_by:%d-%m-%Y}); {amount} refunded within {policy.refund_payout_days} days of receipt.")
            self._insert_promise(session, customer_id, "return", text, end_of_day(refund_by, customer.country),
                                 reference, conversation_id)
            session.flush()
            return Cancellation(order_number, "return_started", order_return=_order_return(row))

        return self._run(work, attempts=3)

    @staticmethod
    def _own_order(session: Session, customer_id: str, order_number: str) -> OrderRow:
        order = session.get(OrderRow, str(order_number))
        if order is None or order.customer_id != customer_id:
            raise NotFound(f"order {order_number}")  # also someone else's: never say it exists
        return order

    @staticmethod
    def _paid_cents(session: Session, order: OrderRow) -> int:
        """What the customer paid for the order: its charges, or its total when payments predate the ledger."""
        payments = session.scalars(select(PaymentRow).where(PaymentRow.order_number == order.number)).all()
        if not payments:
            return order.total_cents
        return sum(p.amount_cents for p in payments if p.status == "paid")

    def change_order(
        self,
        customer_id: str,
        order_number: str,
        address: Optional[str] = None,
        delivery_day: Optional[dt.date] = None,
    ) -> OrderChange:
        """Changes the delivery address and/or day of an order that is still being prepared.

        The address must be in the customer's country (a postcode in its format and a street);
        the day a working day from the next one on, at most ``delivery_days_ahead`` ahead.
        NotEligible "already_shipped" (shipped, late, delivered, lost) or "cancelled";
        ValueError for an unusable address or day; NotFound for someone else's order.
        """
        if address is None and delivery_day is None:
            raise ValueError("nothing to change")
        policy = self.service_policy()

        def work(session: Session) -> OrderChange:
            order = self._own_order(session, customer_id, order_number)
            if order.status == "cancelled":
                raise NotEligible("cancelled")
            if order.status != "processing":
                raise NotEligible("already_shipped")
            customer = self._customer_row(session, customer_id)
            row = session.get(OrderDeliveryRow, order.number)
            if row is None:
                row = OrderDeliveryRow(order_number=order.number, customer_id=customer_id, street=customer.street,
                                       postcode=customer.postcode, city=customer.city)
                session.add(row)
            if address is not None:
                row.postcode, row.street = _parse_address(address, customer.country)
                row.city = ""  # the street line as typed carries the place
            if delivery_day is not None:
                today = self._today()
                if delivery_day.weekday() >= 5:
                    raise ValueError("carriers do not deliver at the weekend")
                if delivery_day < next_working_day(today):
                    raise ValueError("too early")
                if delivery_day > today + dt.timedelta(days=policy.delivery_days_ahead):
                    raise ValueError("too far ahead")
                row.delivery_day = delivery_day
                order.expected_on = delivery_day
            row.changed_at = _utcnow()
            session.flush()
            return OrderChange(order_number=order.number, street=row.street, postcode=row.postcode, city=row.city or "",
                               delivery_day=row.delivery_day)

        return self._run(work)

    # -- invoices, payments -----------------------------------------------------------------

    def invoices(self, customer_id: str) -> List[Invoice]:
        """The customer's invoices, newest first."""
        def work(session: Session) -> List[Invoice]:
            rows = session.scalars(select(InvoiceRow).where(InvoiceRow.customer_id == customer_id)
                                   .order_by(InvoiceRow.issued_on.desc(), InvoiceRow.number.desc())).all()
            return [_invoice(row) for row in rows]
        return self._run(work)

    def send_invoice_copy(self, customer_id: str, invoice_number: str) -> InvoiceCopy:
        """Queues a copy for the e-mail address on file and returns it masked.

        NotFound for an unknown invoice or someone else's.
        """
        def work(session: Session) -> InvoiceCopy:
            invoice = session.get(InvoiceRow, str(invoice_number).strip().upper())
            if invoice is None or invoice.customer_id != customer_id:
                raise NotFound(f"invoice {invoice_number}")
            customer = self._customer_row(session, customer_id)
            copy = InvoiceCopyRow(customer_id=customer_id, invoice_number=invoice.number, sent_to=customer.email,
                                  sent_at=_utcnow())
            session.add(copy)
            session.flush()
            return InvoiceCopy(invoice=_invoice(invoice), masked_email=mask_email(customer.email), sent_at=copy.sent_at)

        copy = self._run(work)
        logger.info("invoice copy %s queued for customer %s", copy.invoice.number, customer_id)
        return copy

    def failed_payment(self, customer_id: str, order_number: Optional[str] = None) -> FailedPayment:
        """The newest failed payment of an order that is still unpaid and not cancelled.

        ``kept_until``: the failure's day plus the policy's hold days. NotFound when there is none.
        """
        policy = self.service_policy()

        def work(session: Session) -> FailedPayment:
            query = (select(PaymentRow, OrderRow).join(OrderRow, OrderRow.number == PaymentRow.order_number)
                     .where(PaymentRow.customer_id == customer_id, PaymentRow.status == "failed",
                            OrderRow.status != "cancelled"))
            if order_number:
                query = query.where(PaymentRow.order_number == str(order_number))
            for payment, order in session.execute(query.order_by(PaymentRow.created_at.desc(), PaymentRow.id.desc())):
                paid_later = session.scalars(select(PaymentRow.id).where(
                    PaymentRow.order_number == order.number, PaymentRow.status.in_(("paid", "refunded")))).first()
                if paid_later is not None:
                    continue
                return FailedPayment(
                    order_number=order.number, amount_cents=payment.amount_cents, method=payment.method,
                    reason=payment.failure_reason or "declined", failed_at=payment.created_at,
                    kept_until=payment.created_at.date() + dt.timedelta(days=policy.failed_payment_hold_days),
                    hold_days=policy.failed_payment_hold_days,
                )
            raise NotFound("no failed payment")

        return self._run(work)

    def refund_duplicate_charge(
        self, customer_id: str, order_number: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> DuplicateChargeRefund:
        """Refunds a double charge at once: an order charged more than its total by a repeated charge
        of the same amount; the later charge is refunded (reference, promise). A double charge
        refunded before is returned again. NotFound when none is found: a person looks into it.
        """
        policy = self.service_policy()

        def work(session: Session) -> DuplicateChargeRefund:
            query = select(PaymentRow).where(PaymentRow.customer_id == customer_id,
                                             PaymentRow.status.in_(("paid", "refunded")))
            if order_number:
                query = query.where(PaymentRow.order_number == str(order_number))
            charges: Dict[str, List[PaymentRow]] = {}
            for payment in session.scalars(query.order_by(PaymentRow.created_at.desc(), PaymentRow.id.desc())):
                charges.setdefault(payment.order_number, []).append(payment)
            for number, payments in charges.items():  # newest order first
                refunded = next((p for p in payments if p.refund_reference), None)
                if refunded is not None:
                    return _duplicate_refund(refunded)
                order = session.get(OrderRow, number)
                paid = [p for p in payments if p.status == "paid"]
                amounts = [p.amount_cents for p in paid]
                if order is None or sum(amounts) <= order.total_cents or len(set(amounts)) == len(amounts):
                    continue
                duplicate = next(p for p in paid if amounts.count(p.amount_cents) > 1)  # the newest of the pair
                today = self._today()
                duplicate.status = "refunded"
                duplicate.refund_reference = self._next_reference(session, PaymentRow.refund_reference, f"RC-{today:%Y%m%d}")
                duplicate.refund_due_on = today + dt.timedelta(days=policy.refund_payout_days)
                customer = self._customer_row(session, customer_id)
                amount = format_money(duplicate.amount_cents, customer.language, customer.country)
                text = _in(customer.language,
                           f"Dubbele afschrijving van {amount} voor bestelling {number} terug uiterlijk "
                           f"{duplicate.refund_due_on:%d-%m-%Y}.",
                           f"Double charge of {amount} for order {number} refunded by {duplicate.refund_due_on:%d-%m-%Y}.")
                self._insert_promise(session, customer_id, "refund", text,
                                     end_of_day(duplicate.refund_due_on, customer.country), duplicate.refund_reference,
                                     conversation_id)
                session.flush()
                return _duplicate_refund(duplicate)
            raise NotFound("no double charge")

        return self._run(work, attempts=3)

    # -- account, newsletter, feedback ---------------------------------------------------------

    def signup_link(self) -> SignupLink:
        """A sign-up link with a fresh one-time token; only the token's hash is stored."""
        policy = self.service_policy()
        token = secrets.token_urlsafe(32)
        expires_at = _utcnow() + dt.timedelta(hours=policy.signup_token_hours)

        def work(session: Session) -> None:
            session.add(SignupTokenRow(token_hash=_token_hash(token), created_at=_utcnow(), expires_at=expires_at))

        self._run(work)
        separator = "&" if "?" in policy.signup_url else "?"
        return SignupLink(url=f"{policy.signup_url}{separator}{urlencode({'token': token})}", expires_at=expires_at)

    def redeem_signup_token(self, token: str) -> bool:
        """True once for a valid token before it expires (atomic: two redemptions, one True)."""
        if not token:
            return False

        def work(session: Session) -> bool:
            now = _utcnow()
            result = session.execute(
                update(SignupTokenRow)
                .where(SignupTokenRow.token_hash == _token_hash(token), SignupTokenRow.used_at.is_(None),
                       SignupTokenRow.expires_at > now)
                .values(used_at=now).execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

        return self._run(work)

    def request_account_deletion(self, customer_id: str, conversation_id: Optional[str] = None) -> PrivacyRequest:
        """Records the erasure request (due in the policy's ``erasure_days``) with a promise.

        An open request is returned again. NotFound for an unknown customer.
        """
        policy = self.service_policy()

        def work(session: Session) -> PrivacyRequest:
            customer = self._customer_row(session, customer_id)
            existing = session.scalars(select(PrivacyRequestRow).where(
                PrivacyRequestRow.customer_id == customer_id, PrivacyRequestRow.kind == "erasure",
                PrivacyRequestRow.status == "open")).first()
            if existing is not None:
                return _privacy_request(existing)
            today = self._today()
            row = PrivacyRequestRow(
                reference=self._next_reference(session, PrivacyRequestRow.reference, f"PV-{today:%Y%m%d}"),
                customer_id=customer_id, kind="erasure", requested_at=_utcnow(),
                due_on=today + dt.timedelta(days=policy.erasure_days), status="open", conversation_id=conversation_id,
            )
            session.add(row)
            text = _in(customer.language,
                       f"Account en gegevens verwijderd uiterlijk {row.due_on:%d-%m-%Y} (verzoek {row.reference}).",
                       f"Account and data deleted by {row.due_on:%d-%m-%Y} (request {row.reference}).")
            self._insert_promise(session, customer_id, "privacy", text, end_of_day(row.due_on, customer.country),
                                 row.reference, conversation_id)
            session.flush()
            return _privacy_request(row)

        return self._run(work, attempts=3)

    def unsubscribe_newsletter(self, customer_id: str) -> NewsletterUnsubscription:
        """Off the newsletter now; ``was_subscribed`` False when they were not on it."""
        def work(session: Session) -> NewsletterUnsubscription:
            self._customer_row(session, customer_id)
            row = session.get(NewsletterRow, customer_id)
            if row is None:
                return NewsletterUnsubscription(customer_id, was_subscribed=False, unsubscribed_at=None)
            if not row.subscribed:
                return NewsletterUnsubscription(customer_id, was_subscribed=False, unsubscribed_at=row.changed_at)
            row.subscribed, row.changed_at = False, _utcnow()
            session.flush()
            return NewsletterUnsubscription(customer_id, was_subscribed=True, unsubscribed_at=row.changed_at)

        return self._run(work)

    def subscribe_newsletter(self, customer_id: str) -> bool:
        """On the newsletter now; False when they already were."""
        def work(session: Session) -> bool:
            self._customer_row(session, customer_id)
            row = session.get(NewsletterRow, customer_id)
            if row is not None and row.subscribed:
                return False
            if row is None:
                row = NewsletterRow(customer_id=customer_id)
                session.add(row)
            row.subscribed, row.changed_at = True, _utcnow()
            session.flush()
            return True

        return self._run(work)

    def add_feedback(
        self,
        text: str,
        language: str,
        channel: str,
        customer_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Feedback:
        """Stores the feedback exactly as written. ValueError for empty or oversized text, or a bad
        language or channel; NotFound for an unknown customer id."""
        if not text or not text.strip() or len(text) > MAX_FEEDBACK_CHARS:
            raise ValueError(f"feedback must have text, at most {MAX_FEEDBACK_CHARS} characters")
        if not language or len(language) > 5 or not channel or len(channel) > 20:
            raise ValueError("feedback needs a language code and a channel name")

        def work(session: Session) -> Feedback:
            if customer_id is not None:
                self._customer_row(session, customer_id)
            row = FeedbackRow(customer_id=customer_id, language=language, channel=channel, text=text,
                              conversation_id=conversation_id, created_at=_utcnow())
            session.add(row)
            session.flush()
            return _feedback(row)

        return self._run(work)

    def feedback(self, since: Optional[dt.datetime] = None) -> List[Feedback]:
        """Feedback for the team, newest first (from ``since`` on, when given)."""
        def work(session: Session) -> List[Feedback]:
            query = select(FeedbackRow)
            if since is not None:
                query = query.where(FeedbackRow.created_at >= _as_utc(since))
            return [_feedback(row) for row in session.scalars(query.order_by(FeedbackRow.created_at.desc(),
                                                                              FeedbackRow.id.desc()))]
        return self._run(work)

    def erase_feedback(self, feedback_id: int) -> bool:
        """Deletes one piece of feedback; False when there is none with this id."""
        def work(session: Session) -> bool:
            result = session.execute(delete(FeedbackRow).where(FeedbackRow.id == int(feedback_id))
                                     .execution_options(synchronize_session=False))
            return result.rowcount == 1
        return self._run(work)

    # -- goodwill -------------------------------------------------------------------------------

    def service_policy(self) -> ServicePolicy:
        """The operator's policy file (re-read when it changes); BackendUnavailable when invalid."""
        try:
            return self._policy_file.get()
        except PolicyError as exc:
            logger.error("%s", exc)
            raise BackendUnavailable(str(exc)) from exc

    def grant_goodwill(
        self,
        customer_id: str,
        reason: str,
        event_id: str,
        repeat_contact: bool = False,
        conversation_id: Optional[str] = None,
        approved_by: Optional[str] = None,
    ) -> Goodwill:
        """A gesture within the policy for an outage, a late or lost order, or a defect in warranty.

        ``event_id``: the outage id, the order number or the purchase id. The step on the policy's
        ladder is the number of earlier contacts about this event (in other conversations; for an
        order, a promise made about it counts too), at least 1 when ``repeat_contact``, at most the
        last step. Once per customer and event (a unique constraint): asked again, the granted
        gesture comes back with ``already_granted``. Above ``bot_limit_cents`` and without
        ``approved_by``: status "needs_person", nothing stored but the contact.

        Raises NotFound (unknown, or not the customer's), NotEligible: "outage_too_short",
        "not_late", "not_lost", "not_delivered", "returned", "out_of_warranty", "no_regular_purchases";
        ValueError for an unknown ``reason``.
        """
        if reason not in GOODWILL_SUBJECTS:
            raise ValueError(f"unknown goodwill reason {reason!r}")
        event_id = str(event_id).strip()
        event_key = f"{GOODWILL_SUBJECTS[reason]}:{event_id}"
        policy = self.service_policy()

        def work(session: Session) -> Any:
            customer = self._customer_row(session, customer_id)
            existing = session.scalars(select(GoodwillRow).where(
                GoodwillRow.customer_id == customer_id, GoodwillRow.event_key == event_key)).first()
            if existing is not None:
                return _goodwill(existing, already_granted=True)
            subject = self._goodwill_subject(session, customer, reason, event_id)
            earlier, seen_here = self._earlier_contacts(session, customer_id, event_key, event_id, conversation_id)
            if approved_by and not seen_here:
                # A person approving a proposal is not a new contact: the proposal's contact is
                # the latest one recorded, and the step stays the one proposed.
                earlier = max(earlier - 1, 0)
            elif not seen_here:
                session.add(ProblemContactRow(customer_id=customer_id, event_key=event_key,
                                              conversation_id=conversation_id, contacted_at=_utcnow()))
            step = min(max(earlier, 1 if repeat_contact else 0), policy.steps(reason) - 1)
            try:
                proposal = self._propose(session, policy, customer, reason, subject, step)
            except NotEligible as refusal:
                return refusal  # raised after the commit, so this contact still counts
            proposal.update(customer_id=customer_id, reason=reason, event_key=event_key, step=step)
            if proposal["amount_cents"] > policy.bot_limit_cents and not approved_by:
                proposal.update(voucher_code=None)  # a code is made only when the voucher is
                return Goodwill(status="needs_person", **proposal)
            today = self._today()
            reference = self._next_reference(session, GoodwillRow.reference, f"GW-{today:%Y%m%d}")
            promise = self._insert_promise(session, customer_id, "goodwill", proposal["description"],
                                           end_of_day(proposal["due_on"], customer.country), reference, conversation_id)
            session.flush()
            row = GoodwillRow(reference=reference, promise_id=promise.id, approved_by=approved_by,
                              conversation_id=conversation_id, created_at=_utcnow(), **proposal)
            session.add(row)
            session.flush()
            return _goodwill(row)

        outcome = self._run(work, attempts=3)
        if isinstance(outcome, NotEligible):
            raise outcome
        if outcome.status == "granted" and not outcome.already_granted:
            logger.info("goodwill %s (%s) granted to customer %s", outcome.reference, outcome.kind, customer_id)
        return outcome

    def _goodwill_subject(self, session: Session, customer: CustomerRow, reason: str, event_id: str) -> Any:
        """The outage, order or purchase the gesture is for; NotFound when it is not the customer's."""
        if reason == "outage":
            outage = session.get(OutageRow, int(event_id)) if event_id.isdigit() else None
            hit = outage is not None and session.scalars(select(OutagePostcodeRow.outage_id).where(
                OutagePostcodeRow.outage_id == outage.id,
                OutagePostcodeRow.postcode.in_(postcode_areas(customer.postcode)))).first() is not None
            if not hit:
                raise NotFound(f"outage {event_id}")
            return outage
        if reason in ("late_order", "lost_order"):
            return self._own_order(session, customer.id, event_id)
        purchase = session.get(PurchaseRow, int(event_id)) if event_id.isdigit() else None
        if purchase is None or purchase.customer_id != customer.id:
            raise NotFound(f"purchase {event_id}")
        return purchase

    @staticmethod
    def _earlier_contacts(session: Session, customer_id: str, event_key: str, event_id: str,
                          conversation_id: Optional[str]) -> Tuple[int, bool]:
        """How many other conversations were about this event, and whether this one was already."""
        rows = session.scalars(select(ProblemContactRow.conversation_id).where(
            ProblemContactRow.customer_id == customer_id, ProblemContactRow.event_key == event_key)).all()
        others = len([c for c in rows if c is None or c != conversation_id])
        if event_key.startswith("order:"):
            # A promise about this order (a resend of a late one) means they were here before.
            promised = session.scalars(select(PromiseRow.conversation_id).where(
                PromiseRow.customer_id == customer_id, PromiseRow.reference == event_id,
                PromiseRow.kind != "goodwill")).all()
            others += 1 if any(c is None or c != conversation_id for c in promised) else 0
        return others, conversation_id is not None and conversation_id in rows

    def _propose(self, session: Session, policy: ServicePolicy, customer: CustomerRow, reason: str,
                 subject: Any, step: int) -> Dict[str, Any]:
        """The gesture the policy gives (Goodwill's fields but identity), or NotEligible."""
        today, lang = self._today(), customer.language
        if reason == "outage":
            end = subject.resolved_at or _utcnow()
            hours = int((end - subject.started_at).total_seconds() // 3600)
            if hours < policy.outage_min_hours:
                raise NotEligible("outage_too_short")
            amount = hours * policy.outage_cents_per_hour[step]
            due_on = _next_bill_day(today, policy.outage_bill_day)
            money = format_money(amount, lang, customer.country)
            return dict(kind="bill_credit", amount_cents=amount, due_on=due_on, hours=hours,
                        description=_in(lang, f"Tegoed van {money} op de rekening van {due_on:%d-%m-%Y} voor "
                                              f"{hours} uur zonder {SERVICE_NAMES_NL.get(subject.service, subject.service)}.",
                                        f"Credit of {money} on the bill of {due_on:%d-%m-%Y} for {hours} hours "
                                        f"without {SERVICE_NAMES_EN.get(subject.service, subject.service)}."))
        if reason in ("late_order", "lost_order"):
            order: OrderRow = subject
            if reason == "lost_order" and order.status != "lost":
                raise NotEligible("not_lost")
            late = (order.status == "late"
                    or (order.delivered_on is not None and order.expected_on is not None
                        and order.delivered_on > order.expected_on)
                    or (order.status == "shipped" and order.expected_on is not None and order.expected_on < today))
            if reason == "late_order" and not late:
                raise NotEligible("not_late")
            ladder = policy.late_order_steps if reason == "late_order" else policy.lost_order_steps
            gesture = ladder[step]
            money = format_money(gesture.cents, lang, customer.country)
            if gesture.type == "delivery_costs":
                due_on = today + dt.timedelta(days=policy.refund_payout_days)
                return dict(kind="delivery_costs", amount_cents=gesture.cents, due_on=due_on,
                            description=_in(lang, f"Bezorgkosten ({money}) van bestelling {order.number} terug "
                                                  f"uiterlijk {due_on:%d-%m-%Y}.",
                                            f"Delivery costs ({money}) of order {order.number} refunded by "
                                            f"{due_on:%d-%m-%Y}."))
            code = f"HELDER-{secrets.token_hex(4).upper()}"
            valid_until = today + dt.timedelta(days=gesture.valid_days)
            return dict(kind="voucher", amount_cents=gesture.cents, due_on=today, voucher_code=code,
                        valid_until=valid_until,
                        description=_in(lang, f"Tegoedbon {code} van {money} (bestelling {order.number}), geldig tot "
                                              f"{valid_until:%d-%m-%Y}, vandaag per e-mail.",
                                        f"Voucher {code} worth {money} (order {order.number}), valid until "
                                        f"{valid_until:%d-%m-%Y}, e-mailed today."))
        purchase: PurchaseRow = subject
        if purchase.delivered_on is None:
            raise NotEligible("not_delivered")
        if purchase.returned:
            raise NotEligible("returned")
        if not _purchase(purchase).in_warranty(today):
            raise NotEligible("out_of_warranty")
        extra = self._regular_extra(session, policy, purchase, today)
        if extra is None:
            raise NotEligible("no_regular_purchases")
        category, cents = extra
        amount = min(cents, policy.defect_extra_max_cents[step])
        offer = policy.defect_extras[category]
        money = format_money(amount, lang, customer.country)
        due_on = next_working_day(today)
        return dict(kind="extra_product", amount_cents=amount, due_on=due_on, extra_category=category,
                    description=_in(lang, f"Bij de vervangende {purchase.product}: {offer.nl} (tot {money}), "
                                          f"bezorgd op {due_on:%d-%m-%Y}.",
                                    f"With the replacement {purchase.product}: {offer.en} (up to {money}), "
                                    f"delivered on {due_on:%d-%m-%Y}."))

    @staticmethod
    def _regular_extra(session: Session, policy: ServicePolicy, purchase: PurchaseRow,
                       today: dt.date) -> Optional[Tuple[str, int]]:
        """The accessory or consumable the customer buys most often (at least ``min_purchases``
        times in ``lookback_days``; ties: the latest bought), with its latest price."""
        since = today - dt.timedelta(days=policy.defect_lookback_days)
        rows = session.scalars(select(PurchaseRow).where(
            PurchaseRow.customer_id == purchase.customer_id, PurchaseRow.id != purchase.id,
            PurchaseRow.purchased_on >= since).order_by(PurchaseRow.purchased_on.desc(), PurchaseRow.id.desc())).all()
        counts: Dict[str, List[PurchaseRow]] = {}
        for row in rows:
            category = row.category.lower()
            if category in policy.defect_extras:
                counts.setdefault(category, []).append(row)
        regular = [(len(found), found[0].purchased_on, category, found[0].price_cents)
                   for category, found in counts.items() if len(found) >= policy.defect_min_purchases]
        if not regular:
            return None
        _, _, category, cents = max(regular)
        return category, cents

    def goodwill(self, customer_id: str) -> List[Goodwill]:
        """The gestures granted to the customer, oldest first."""
        def work(session: Session) -> List[Goodwill]:
            rows = session.scalars(select(GoodwillRow).where(GoodwillRow.customer_id == customer_id)
                                   .order_by(GoodwillRow.created_at, GoodwillRow.reference)).all()
            return [_goodwill(row) for row in rows]
        return self._run(work)

    # -- promises -----------------------------------------------------------------------

    @staticmethod
    def _record(session: Session, event: str, row: PromiseRow) -> None:
        """Notes a promise event, published once the transaction commits (:meth:`transaction`)."""
        session.info.setdefault(_PROMISE_EVENTS, []).append((event, row, _utcnow()))

    def _insert_promise(
        self, session: Session, customer_id: str, kind: str, description: str, due_at: dt.datetime,
        reference: Optional[str], conversation_id: Optional[str],
    ) -> PromiseRow:
        # Shared by add_promise and the remedies, so a remedy and its promise commit together.
        row = PromiseRow(customer_id=customer_id, kind=kind, description=description, reference=reference,
                         due_at=_as_utc(due_at), status="open", conversation_id=conversation_id,
                         created_at=_utcnow())
        session.add(row)
        self._record(session, "made", row)
        return row

    def _settle(self, session: Session, row: PromiseRow, status: str) -> None:
        """An open promise becomes kept, broken or cancelled (shared by every place that settles one)."""
        row.status = status
        self._record(session, status, row)

    @staticmethod
    def _open_promises(session: Session, customer_id: str, kind: Optional[str] = None,
                       reference: Optional[str] = None) -> List[PromiseRow]:
        query = select(PromiseRow).where(PromiseRow.customer_id == customer_id, PromiseRow.status == "open")
        if kind is not None:
            query = query.where(PromiseRow.kind == kind)
        if reference is not None:
            query = query.where(PromiseRow.reference == reference)
        return list(session.scalars(query.order_by(PromiseRow.id)).all())

    def add_promise(
        self,
        customer_id: str,
        kind: str,
        description: str,
        due_at: dt.datetime,
        reference: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Promise:
        """Stores a commitment (status "open"); a naive ``due_at`` is taken as local time."""
        if not kind or not description:
            raise ValueError("a promise needs a kind and a description")

        def work(session: Session) -> Promise:
            self._customer_row(session, customer_id)
            row = self._insert_promise(session, customer_id, kind, description, due_at, reference, conversation_id)
            session.flush()
            return _promise(row)

        return self._run(work)

    def settle_promise(self, customer_id: str, promise_id: int, status: str) -> Promise:
        """Marks the customer's open promise ``status`` (kept, broken or cancelled); a promise
        settled before is returned as it is. NotFound for an unknown or someone else's promise."""
        if status not in SETTLED_STATUSES:
            raise ValueError(f"a promise is settled as one of {', '.join(SETTLED_STATUSES)}, not {status!r}")

        def work(session: Session) -> Promise:
            row = session.get(PromiseRow, promise_id)
            if row is None or row.customer_id != customer_id:
                raise NotFound(f"promise {promise_id}")
            if row.status == "open":
                self._settle(session, row, status)
            return _promise(row)

        return self._run(work)

    def promises(self, customer_id: str, status: Optional[str] = None) -> List[Promise]:
        """The customer's promises (optionally only those with ``status``), oldest due first."""
        def work(session: Session) -> List[Promise]:
            query = select(PromiseRow).where(PromiseRow.customer_id == customer_id)
            if status is not None:
                query = query.where(PromiseRow.status == status)
            rows = session.scalars(query.order_by(PromiseRow.due_at, PromiseRow.id)).all()
            return [_promise(row) for row in rows]
        return self._run(work)


    # -- privacy -------------------------------------------------------------------------

    def erase_customer(self, customer_id: str) -> Dict[str, int]:
        """Deletes the customer and all their rows in one transaction (children first, for the
        foreign keys); ``{}`` for an unknown customer. Outages are about areas, not people, and
        sign-up tokens carry no personal data: kept. Their feedback goes too (it may name them).
        Their open promises are settled first: the erasure request's kept, the rest cancelled."""
        tables = (("goodwill", GoodwillRow), ("problem_contacts", ProblemContactRow), ("feedback", FeedbackRow),
                  ("newsletter_subscriptions", NewsletterRow), ("privacy_requests", PrivacyRequestRow),
                  ("promises", PromiseRow), ("password_resets", PasswordResetRow),
                  ("invoice_copies", InvoiceCopyRow), ("payments", PaymentRow), ("invoices", InvoiceRow),
                  ("order_deliveries", OrderDeliveryRow), ("order_returns", OrderReturnRow), ("refunds", RefundRow),
                  ("shipments", ShipmentRow), ("purchases", PurchaseRow), ("orders", OrderRow),
                  ("customers", CustomerRow))

        def work(session: Session) -> Dict[str, int]:
            if session.get(CustomerRow, customer_id) is None:
                return {}
            # The erasure they asked for is done; what else was still open nobody can keep now.
            for promise in self._open_promises(session, customer_id):
                self._settle(session, promise, "kept" if promise.kind == "privacy" else "cancelled")
            deleted = {}
            for name, row in tables:
                column = row.id if row is CustomerRow else row.customer_id
                result = session.execute(delete(row).where(column == customer_id).execution_options(
                    synchronize_session=False))
                deleted[name] = int(result.rowcount or 0)
            return deleted

        return self._run(work)


def _without_postcode(address: str, postcode: str) -> str:
    """The address minus its postcode, in whatever spacing or case it was typed."""
    # Postcodes are letters and digits only, so they need no escaping in the pattern.
    pattern = r"\s*".join(postcode.replace(" ", ""))
    rest = re.sub(rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])", " ", address, count=1, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", rest).strip(" ,;")
