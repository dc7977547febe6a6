"""A :class:`CustomerBackend` on a SQL database (SQLite for demos, PostgreSQL in production).

Point ``KLANTCONTACT_BACKEND`` at ``actions.backend.sql:SqlBackend`` and ``KLANTCONTACT_DB_URL``
at the database (default: ``sqlite:///<repo>/var/helder.db``). Create and fill the tables with
``python -m actions.backend.seed``.

Nothing connects at import or construction time: the engine is built on first use, so a down
database only costs the conversation that needs it (as :class:`BackendUnavailable`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar
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
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, declarative_base, relationship, selectinload, sessionmaker
from sqlalchemy.types import TypeDecorator

from actions.backend.base import (
    BackendUnavailable,
    Customer,
    NotEligible,
    NotFound,
    Order,
    Outage,
    PasswordReset,
    Promise,
    Purchase,
    Refund,
    RefundPolicy,
    Shipment,
)
from actions.identifiers import EMAIL, Identifier, normalise_phone, parse_postcode

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

T = TypeVar("T")
UTC = dt.timezone.utc
Base = declarative_base()


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
    status = Column(String(20), nullable=False)  # processing, shipped, late, delivered, lost
    ordered_on = Column(Date, nullable=False)
    expected_on = Column(Date)
    delivered_on = Column(Date)
    carrier = Column(String(40))
    tracking = Column(String(60))
    total_cents = Column(Integer, nullable=False, default=0)

    lines = relationship("PurchaseRow", order_by="PurchaseRow.id", lazy="raise")


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

    areas = relationship("OutagePostcodeRow", cascade="all, delete-orphan", lazy="raise")


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


# -- conversions --------------------------------------------------------------------------


def _customer(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id, name=row.name, email=row.email, phone=row.phone, postcode=row.postcode,
        country=row.country, language=row.language, account_locked=row.account_locked,
        street=row.street or "", city=row.city or "",
    )


def _order(row: OrderRow) -> Order:
    return Order(
        number=row.number, customer_id=row.customer_id, items=[line.product for line in row.lines],
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


def _outage(row: OutageRow) -> Outage:
    return Outage(
        id=row.id, service=row.service, postcodes=sorted(area.postcode for area in row.areas),
        started_at=row.started_at, expected_fix_at=row.expected_fix_at,
        description_nl=row.description_nl, description_en=row.description_en,
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


def _money(cents: int, country: str) -> str:
    """"€ 149,99" on the continent, "£149.99" in the UK."""
    return f"£{cents / 100:.2f}" if country == "GB" else f"€ {cents // 100},{cents % 100:02d}"


class _Conflict(BackendUnavailable):
    """A unique constraint hit by a concurrent request; the operation is retried."""


# -- the backend --------------------------------------------------------------------------


class SqlBackend:
    """Implements :class:`actions.backend.base.CustomerBackend` on SQLAlchemy (SQLite, PostgreSQL)."""

    def __init__(self, url: Optional[str] = None) -> None:
        """``url`` defaults to ``$KLANTCONTACT_DB_URL``, else ``sqlite:///<repo>/var/helder.db``."""
        self.url: str = url or os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_PATH}"
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
            def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()
        return engine

    def dispose(self) -> None:
        """Closes pooled connections (tests drop their database afterwards)."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction; database failures surface as :class:`BackendUnavailable`."""
        engine = self.engine
        assert self._sessions is not None
        try:
            with self._sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            raise _Conflict(f"conflicting write: {exc.orig}") from exc
        except (DBAPIError, PoolTimeoutError) as exc:
            logger.warning("database %s unavailable: %s", engine.url.render_as_string(hide_password=True),
                           str(getattr(exc, "orig", exc)).strip())
            raise BackendUnavailable(f"database unavailable: {getattr(exc, 'orig', exc)}") from exc

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
                postcode = parse_postcode(value)
                pattern = POSTCODE_FORMATS.get(row.country)
                if postcode is None or (pattern is not None and not pattern.fullmatch(postcode)):
                    raise ValueError(f"no {row.country} postcode in the address")
                street = _without_postcode(value, postcode)
                if not street:
                    raise ValueError("no street in the address")
                row.postcode, row.street = postcode, street
            session.flush()
            return _customer(row)

        return self._run(work)

    # -- orders, products ---------------------------------------------------------------

    def orders(self, customer_id: str) -> List[Order]:
        """The customer's orders, newest first."""
        def work(session: Session) -> List[Order]:
            rows = session.scalars(
                select(OrderRow).options(selectinload(OrderRow.lines))
                .where(OrderRow.customer_id == customer_id)
                .order_by(OrderRow.ordered_on.desc(), OrderRow.number.desc())
            ).all()
            return [_order(row) for row in rows]
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
        areas = postcode_areas(postcode)
        if not areas:
            return []
        moment = _as_utc(now) if now is not None else _utcnow()

        def work(session: Session) -> List[Outage]:
            hit = select(OutagePostcodeRow.outage_id).where(OutagePostcodeRow.postcode.in_(areas))
            rows = session.scalars(
                select(OutageRow).options(selectinload(OutageRow.areas))
                .where(
                    OutageRow.id.in_(hit),
                    OutageRow.started_at <= moment,
                    (OutageRow.resolved_at.is_(None)) | (OutageRow.resolved_at > moment),
                )
                .order_by(OutageRow.started_at, OutageRow.id)
            ).all()
            return [_outage(row) for row in rows]

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
            amount = _money(order.total_cents, customer.country)
            if customer.language == "en":
                text = f"Refund of {amount} for order {order_number} on your account by {row.due_on:%d-%m-%Y}."
            else:
                text = f"Terugbetaling van {amount} voor bestelling {order_number} uiterlijk {row.due_on:%d-%m-%Y} op je rekening."
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

    # -- promises -----------------------------------------------------------------------

    def _insert_promise(
        self, session: Session, customer_id: str, kind: str, description: str, due_at: dt.datetime,
        reference: Optional[str], conversation_id: Optional[str],
    ) -> PromiseRow:
        # Shared by add_promise and the remedies, so a remedy and its promise commit together.
        row = PromiseRow(customer_id=customer_id, kind=kind, description=description, reference=reference,
                         due_at=_as_utc(due_at), status="open", conversation_id=conversation_id,
                         created_at=_utcnow())
        session.add(row)
        return row

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
        foreign keys); ``{}`` for an unknown customer. Outages are about areas, not people: kept."""
        tables = (("promises", PromiseRow), ("password_resets", PasswordResetRow), ("refunds", RefundRow),
                  ("shipments", ShipmentRow), ("purchases", PurchaseRow), ("orders", OrderRow),
                  ("customers", CustomerRow))

        def work(session: Session) -> Dict[str, int]:
            if session.get(CustomerRow, customer_id) is None:
                return {}
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
