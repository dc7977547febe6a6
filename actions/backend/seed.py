"""Demo data for the SQL backend: customers in NL, BE and the UK, orders, products, outages.

Dates are relative to ``today`` so demo orders stay "late" or "on their way". Seeding is
idempotent: demo rows are found by their natural keys and updated in place. The demo
customers the tests rely on are reset completely (their refunds, replacements, returns,
order changes, invoice copies, privacy requests, feedback, goodwill, promises and password
resets are deleted; their payments and newsletter subscriptions put back) so demos and tests
start clean; everything else made in conversations, and rows that are not demo data, are
left alone.

Run ``python -m actions.backend.seed`` to create the tables and seed ``$KLANTCONTACT_DB_URL``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from actions.backend.base import BackendUnavailable, Customer
from actions.backend.sql import (
    UTC,
    CustomerRow,
    FeedbackRow,
    GoodwillRow,
    InvoiceCopyRow,
    InvoiceRow,
    NewsletterRow,
    OrderDeliveryRow,
    OrderReturnRow,
    OrderRow,
    OutagePostcodeRow,
    OutageRow,
    PasswordResetRow,
    PaymentRow,
    PrivacyRequestRow,
    ProblemContactRow,
    PromiseRow,
    PurchaseRow,
    RefundPolicyRow,
    RefundRow,
    ShipmentRow,
    SignupTokenRow,
    SqlBackend,
)

# The customers the end-to-end tests and demos rely on: reset to their seed state every time.
RESET_CUSTOMER_IDS = ("48213377", "51937204", "60418825", "72055139", "39481726", "45678912",
                      "41726358", "36150482", "52093817", "27465093", "29384756")

CUSTOMERS: List[Customer] = [
    # -- the customers the tests and demos rely on --------------------------------------------
    Customer("48213377", "Sanne de Vries", "sanne.devries@example.nl", "+31612345678", "3511 AB", "NL",
             street="Oudegracht 112", city="Utrecht"),
    Customer("51937204", "Pieter Janssens", "pieter.janssens@example.be", "+32470123456", "2000", "BE",
             street="Meir 45", city="Antwerpen"),
    Customer("60418825", "Emily Clarke", "emily.clarke@example.co.uk", "+447700900123", "SW1A 1AA", "GB",
             language="en", street="1 The Mall", city="London"),
    Customer("72055139", "Ahmed El Amrani", "ahmed.elamrani@example.nl", "+31687654321", "1055 KL", "NL",
             account_locked=True, street="Bos en Lommerweg 201", city="Amsterdam"),
    # -- outage demos ------------------------------------------------------------------------
    Customer("39481726", "Lotte Visser", "lotte.visser@example.nl", "+31611122233", "3581 KP", "NL",
             street="Biltstraat 88", city="Utrecht"),
    Customer("45678912", "Jan Peeters", "jan.peeters@example.be", "+32475987654", "9000", "BE",
             street="Korenmarkt 3", city="Gent"),
    # -- cancel, change, invoices, payments, newsletter, goodwill (issue 13) -----------------
    # Mila: an order still processing (cancel), one to change, one shipped (cancel = return),
    # invoices, on the newsletter.
    Customer("41726358", "Mila Hendriks", "mila.hendriks@example.nl", "+31623456789", "5611 AZ", "NL",
             street="Stratumseind 20", city="Eindhoven"),
    # Thomas: a failed payment on an order waiting for it, a double charge, already off the newsletter.
    Customer("36150482", "Thomas Mertens", "thomas.mertens@example.be", "+32478223344", "3000", "BE",
             street="Bondgenotenlaan 50", city="Leuven"),
    # Kevin: a broken hair-dryer in warranty and PlayStation games bought with the loyalty card
    # (the extra with the replacement), a late order, a long outage at his address.
    Customer("52093817", "Kevin de Jong", "kevin.dejong@example.nl", "+31645678901", "2011 AB", "NL",
             street="Grote Markt 2", city="Haarlem"),
    # The same cases in English: Harry (cancel, change, invoice, failed payment, double charge,
    # newsletter) and Ruby (a broken coffee machine and capsules she buys often, a late order, a
    # long outage at her address).
    Customer("27465093", "Harry Wilson", "harry.wilson@example.co.uk", "+447700900321", "LS1 4AP", "GB",
             language="en", street="10 Park Row", city="Leeds"),
    Customer("29384756", "Ruby Evans", "ruby.evans@example.co.uk", "+447700900654", "CF10 1EP", "GB",
             language="en", street="3 Queen Street", city="Cardiff"),
    # -- more of the customer base -----------------------------------------------------------
    Customer("30571846", "Daan Bakker", "daan.bakker@example.nl", "+31620304050", "3011 AD", "NL",
             street="Hoogstraat 14", city="Rotterdam"),
    Customer("28374619", "Fleur Jansen", "fleur.jansen@example.nl", "+31634567890", "1012 JS", "NL",
             street="Damrak 70", city="Amsterdam"),
    Customer("37710254", "Noah Dijkstra", "noah.dijkstra@example.nl", "+31655443322", "9711 LM", "NL",
             account_locked=True, street="Vismarkt 9", city="Groningen"),
    Customer("53820471", "Sofie Claes", "sofie.claes@example.be", "+32485112233", "2018", "BE",
             street="Lange Kievitstraat 12", city="Antwerpen"),
    Customer("55102938", "Lucas Maes", "lucas.maes@example.be", "+32496445566", "1000", "BE",
             language="en", street="Rue Neuve 30", city="Brussel"),
    Customer("61122334", "Oliver Smith", "oliver.smith@example.co.uk", "+447700900456", "M1 1AE", "GB",
             language="en", street="12 Piccadilly", city="Manchester"),
    Customer("62233445", "Grace Taylor", "grace.taylor@example.co.uk", "+447700900789", "EH1 1YZ", "GB",
             language="en", account_locked=True, street="5 Royal Mile", city="Edinburgh"),
]


@dataclass(frozen=True)
class Line:
    """An order line: product, lookup category, price, warranty ("2y", "1y" or None)."""

    product: str
    category: str
    price_cents: int
    warranty: Optional[str] = "2y"


@dataclass(frozen=True)
class DemoOrder:
    """An order relative to today: days ago ordered, days to/from expected, days ago delivered."""

    number: str
    customer_id: str
    status: str
    ordered: int  # days ago
    expected: Optional[int]  # days from today (negative: in the past)
    delivered: Optional[int]  # days ago
    carrier: Optional[str]
    tracking: Optional[str]
    lines: Tuple[Line, ...]


ORDERS: List[DemoOrder] = [
    # -- their orders ---------------------------------------------------------------------------
    DemoOrder("2024118832", "48213377", "shipped", 2, 1, None, "PostNL", "3SHLDR0012345",
              (Line("Philips föhn", "föhn", 3499),)),
    DemoOrder("2024097710", "48213377", "delivered", 30, -27, 27, "DHL", "JVGL0099887766",
              (Line("HP printer", "printer", 14999),)),
    DemoOrder("2024120451", "51937204", "late", 9, -3, None, "bpost", "323299887766554",
              (Line("Sony koptelefoon", "headphones", 27999),)),
    DemoOrder("2024121190", "60418825", "processing", 0, 2, None, "DPD", None,
              (Line("Dyson vacuum cleaner", "vacuum cleaner", 39999),)),
    DemoOrder("2024110032", "72055139", "lost", 14, -10, None, "PostNL", "3SHLDR0077777",
              (Line("Lenovo laptop", "laptop", 89900),)),
    # -- warranty demos: in warranty but outside the refund window; expired ------------------
    DemoOrder("2024088123", "48213377", "delivered", 43, -40, 40, "PostNL", "3SHLDR0034567",
              (Line("Philips föhn HP8230", "föhn", 2999),)),
    DemoOrder("2023051477", "60418825", "delivered", 403, -400, 400, "Royal Mail", "RM123456785GB",
              (Line("Bosch kettle", "kettle", 4499, "1y"),)),
    # -- outage demos --------------------------------------------------------------------------
    DemoOrder("2024071234", "39481726", "delivered", 123, -120, 120, "PostNL", "3SHLDR0055501",
              (Line("Sitecom router", "router", 5999),)),
    DemoOrder("2024102277", "45678912", "delivered", 63, -60, 60, "bpost", "323211223344556",
              (Line("Samsung QLED tv", "tv", 79900), Line("HDMI-kabel 2 m", "kabel", 1299, None))),
    # -- the rest ------------------------------------------------------------------------------
    DemoOrder("2024119954", "30571846", "delivered", 12, -10, 10, "PostNL", "3SHLDR0066602",
              (Line("Philips Sonicare opzetborstels", "tandenborstel", 2499, None),)),
    DemoOrder("2022043318", "30571846", "delivered", 805, -800, 800, "PostNL", "3SHLDR0011103",
              (Line("Samsung Galaxy S22", "phone", 84900),)),
    DemoOrder("2024121005", "28374619", "shipped", 1, 1, None, "PostNL", "3SHLDR0088804",
              (Line("Apple AirPods Pro", "oordopjes", 27900),)),
    DemoOrder("2024116640", "28374619", "delivered", 8, -5, 5, "DHL", "JVGL0011223344",
              (Line("Nespresso Vertuo", "coffee machine", 14900), Line("Nespresso capsules (50)", "capsules", 2950, None))),
    DemoOrder("2024034409", "37710254", "delivered", 250, -247, 247, "PostNL", "3SHLDR0099905",
              (Line("AVM FRITZ!Box 7590", "router", 21900),)),
    DemoOrder("2024120876", "53820471", "processing", 1, 3, None, "bpost", None,
              (Line("Bose soundbar", "soundbar", 49900),)),
    # Above the policy's maximum: a person approves a refund of this one.
    DemoOrder("2024114502", "53820471", "delivered", 9, -6, 6, "bpost", "323277665544332",
              (Line("Apple MacBook Pro 14", "laptop", 229900),)),
    DemoOrder("2024119321", "55102938", "late", 8, -2, None, "bpost", "323255667788990",
              (Line("Garmin horloge", "horloge", 29999),)),
    DemoOrder("2024117788", "61122334", "delivered", 18, -15, 15, "Royal Mail", "RM987654321GB",
              (Line("Samsung Galaxy Tab", "tablet", 32900),)),
    DemoOrder("2024112250", "61122334", "lost", 16, -12, None, "Royal Mail", "RM555666777GB",
              (Line("Kindle Paperwhite", "e-reader", 14999),)),
    DemoOrder("2024120333", "62233445", "shipped", 2, 0, None, "DPD", "15501234567890",
              (Line("Logitech webcam", "webcam", 8999),)),
    # -- issue 13: Mila -------------------------------------------------------------------------
    DemoOrder("2024121501", "41726358", "processing", 0, 2, None, "PostNL", None,
              (Line("Bosch waterkoker", "kettle", 5999),)),
    DemoOrder("2024121502", "41726358", "processing", 1, 3, None, "PostNL", None,
              (Line("Philips airfryer", "airfryer", 11999),)),
    DemoOrder("2024121503", "41726358", "shipped", 2, 1, None, "PostNL", "3SHLDR0121503",
              (Line("JBL speaker", "speaker", 8999),)),
    # -- Thomas ---------------------------------------------------------------------------------
    DemoOrder("2024121504", "36150482", "processing", 1, 3, None, "bpost", None,
              (Line("Samsung Galaxy Buds", "oordopjes", 14999),)),
    DemoOrder("2024121505", "36150482", "delivered", 10, -7, 7, "bpost", "323212150500001",
              (Line("Philips Hue starterset", "lamp", 17999),)),
    # -- Kevin: the hair-dryer, games bought in the shop with the loyalty card (no carrier) -----
    DemoOrder("2024121506", "52093817", "delivered", 62, -60, 60, "PostNL", "3SHLDR0121506",
              (Line("Philips föhn BHD350", "föhn", 3999),)),
    DemoOrder("2024121507", "52093817", "delivered", 200, -200, 200, None, None,
              (Line("PlayStation 5-game Gran Turismo 7", "playstation game", 6999, None),)),
    DemoOrder("2024121508", "52093817", "delivered", 120, -120, 120, None, None,
              (Line("PlayStation 5-game EA Sports FC 25", "playstation game", 5999, None),)),
    DemoOrder("2024121509", "52093817", "delivered", 30, -30, 30, None, None,
              (Line("PlayStation 5-game Astro Bot", "playstation game", 5999, None),)),
    DemoOrder("2024121510", "52093817", "late", 7, -2, None, "PostNL", "3SHLDR0121510",
              (Line("Logitech toetsenbord", "keyboard", 7999),)),
    # -- Harry ----------------------------------------------------------------------------------
    DemoOrder("2024121601", "27465093", "processing", 0, 2, None, "DPD", None,
              (Line("Sony headphones WH-1000XM5", "headphones", 34999),)),
    DemoOrder("2024121602", "27465093", "processing", 1, 3, None, "DPD", None,
              (Line("Dyson V15 vacuum cleaner", "vacuum cleaner", 59999),)),
    DemoOrder("2024121603", "27465093", "shipped", 2, 1, None, "DPD", "15501216030000",
              (Line("Kindle Scribe", "e-reader", 36999),)),
    DemoOrder("2024121604", "27465093", "processing", 1, 3, None, "DPD", None,
              (Line("Nintendo Switch OLED", "console", 31999),)),
    DemoOrder("2024121605", "27465093", "delivered", 12, -9, 9, "DPD", "15501216050000",
              (Line("Anker power bank", "power bank", 4999),)),
    # -- Ruby: the coffee machine, capsules bought in the shop, a late order ------------------------
    DemoOrder("2024121606", "29384756", "delivered", 90, -88, 88, "Royal Mail", "RM121606000GB",
              (Line("De'Longhi coffee machine", "coffee machine", 44999),)),
    DemoOrder("2024121607", "29384756", "delivered", 60, -60, 60, None, None,
              (Line("Coffee capsules, box of 50", "capsules", 1999, None),)),
    DemoOrder("2024121608", "29384756", "delivered", 20, -20, 20, None, None,
              (Line("Coffee capsules, box of 50", "capsules", 1999, None),)),
    DemoOrder("2024121609", "29384756", "late", 6, -2, None, "Royal Mail", "RM121609000GB",
              (Line("Bose soundbar", "soundbar", 49999),)),
]


@dataclass(frozen=True)
class DemoInvoice:
    """An invoice relative to today."""

    number: str
    customer_id: str
    order_number: Optional[str]
    amount_cents: int
    issued: int  # days ago
    due: int  # days from issue
    status: str


INVOICES: List[DemoInvoice] = [
    DemoInvoice("F2024-121501", "41726358", "2024121501", 5999, 0, 14, "paid"),
    DemoInvoice("F2024-121503", "41726358", "2024121503", 8999, 2, 14, "paid"),
    DemoInvoice("F2024-121505", "36150482", "2024121505", 17999, 10, 14, "paid"),
    DemoInvoice("F2024-121603", "27465093", "2024121603", 36999, 2, 14, "paid"),
    DemoInvoice("F2024-121605", "27465093", "2024121605", 4999, 12, 14, "paid"),
]


@dataclass(frozen=True)
class DemoPayment:
    """A payment relative to now (hours ago); ``key`` finds it again when re-seeding."""

    key: str
    customer_id: str
    order_number: str
    amount_cents: int
    method: str
    status: str  # paid, failed
    hours_ago: float
    failure_reason: Optional[str] = None


PAYMENTS: List[DemoPayment] = [
    DemoPayment("mila-kettle", "41726358", "2024121501", 5999, "ideal", "paid", 2),
    DemoPayment("mila-airfryer", "41726358", "2024121502", 11999, "ideal", "paid", 26),
    DemoPayment("mila-speaker", "41726358", "2024121503", 8999, "ideal", "paid", 50),
    # Thomas's earbuds wait for a payment that failed yesterday.
    DemoPayment("thomas-buds-failed", "36150482", "2024121504", 14999, "bancontact", "failed", 20, "insufficient_funds"),
    # ...and his lamps were charged twice, two minutes apart.
    DemoPayment("thomas-hue-1", "36150482", "2024121505", 17999, "card", "paid", 240),
    DemoPayment("thomas-hue-2", "36150482", "2024121505", 17999, "card", "paid", 239.96),
    DemoPayment("harry-headphones", "27465093", "2024121601", 34999, "card", "paid", 3),
    DemoPayment("harry-vacuum", "27465093", "2024121602", 59999, "card", "paid", 25),
    DemoPayment("harry-kindle", "27465093", "2024121603", 36999, "paypal", "paid", 49),
    # Harry's console waits for a card payment that was declined; his power bank was charged twice.
    DemoPayment("harry-switch-failed", "27465093", "2024121604", 31999, "card", "failed", 22, "card_declined"),
    DemoPayment("harry-powerbank-1", "27465093", "2024121605", 4999, "card", "paid", 288),
    DemoPayment("harry-powerbank-2", "27465093", "2024121605", 4999, "card", "paid", 287.98),
]

# Newsletter: on it (True), off it (False); everyone else never subscribed.
NEWSLETTER = {"41726358": True, "36150482": False, "48213377": True, "27465093": True}


@dataclass(frozen=True)
class DemoOutage:
    """An outage relative to now (hours); ``resolved`` hours ago, or None while active."""

    key: str
    service: str
    postcodes: Tuple[str, ...]
    started: float  # hours ago
    fix: Optional[float]  # hours from now (negative: in the past)
    resolved: Optional[float]  # hours ago
    description_nl: str
    description_en: str


OUTAGES: List[DemoOutage] = [
    DemoOutage("utrecht-internet", "internet", ("3581", "3582", "3583"), 1.5, 4, None,
               "Storing op het glasvezelnetwerk in Utrecht-Oost: geen internet. Monteurs zijn bezig.",
               "Fibre network outage in Utrecht-Oost: no internet. Engineers are on site."),
    DemoOutage("gent-tv", "tv", ("9000",), 3, 6, None,
               "Storing in de tv-ontvangst in Gent: zenders vallen weg of haperen.",
               "TV reception problem in Gent: channels drop out or stutter."),
    DemoOutage("manchester-mobile", "mobile", ("M1", "M2"), 0.5, 2, None,
               "Storing in het mobiele netwerk in het centrum van Manchester.",
               "Mobile network outage in Manchester city centre: calls and data may fail."),
    DemoOutage("rotterdam-internet-resolved", "internet", ("3011", "3012"), 30, -26, 26,
               "Storing op het internet in Rotterdam-Centrum (opgelost).",
               "Internet outage in Rotterdam city centre (resolved)."),
    # 26 hours without internet, fixed 4 hours ago: a credit on the next bill (Kevin).
    DemoOutage("haarlem-internet-resolved", "internet", ("2011", "2012"), 30, -4, 4,
               "Storing op het internet in Haarlem-Centrum (opgelost).",
               "Internet outage in Haarlem city centre (resolved)."),
    # 20 hours without internet in Cardiff, fixed 2 hours ago: a credit on the next bill (Ruby).
    DemoOutage("cardiff-internet-resolved", "internet", ("CF10",), 22, -2, 2,
               "Storing op het internet in Cardiff (opgelost).",
               "Internet outage in Cardiff city centre (resolved)."),
]

POLICY = {"days_after_delivery": 30, "max_amount_cents": 100_000}


def _warranty_until(start: dt.date, warranty: Optional[str]) -> Optional[dt.date]:
    """The end of the warranty: "1y" is 365 days, "2y" two calendar years (29 Feb → 28 Feb)."""
    if warranty is None:
        return None
    if warranty == "1y":
        return start + dt.timedelta(days=365)
    try:
        return start.replace(year=start.year + 2)
    except ValueError:
        return start.replace(year=start.year + 2, day=28)


def _reset_demo_customers(session: Session) -> None:
    """Deletes what conversations made for the demo customers (children before parents)."""
    ids = RESET_CUSTOMER_IDS
    for table in (GoodwillRow, ProblemContactRow, ShipmentRow, RefundRow, OrderReturnRow, OrderDeliveryRow,
                  InvoiceCopyRow, PrivacyRequestRow, FeedbackRow, PromiseRow, PasswordResetRow):
        session.execute(delete(table).where(table.customer_id.in_(ids)))


def _seed_customers(session: Session) -> None:
    for customer in CUSTOMERS:
        row = session.get(CustomerRow, customer.id)
        if row is not None and customer.id not in RESET_CUSTOMER_IDS:
            continue  # contact details may have changed in a conversation: keep them
        if row is None:
            row = CustomerRow(id=customer.id)
            session.add(row)
        for name in ("name", "email", "phone", "postcode", "street", "city", "country", "language",
                     "account_locked"):
            setattr(row, name, getattr(customer, name))
    session.flush()


def _seed_orders(session: Session, today: dt.date) -> None:
    day = dt.timedelta(days=1)
    for demo in ORDERS:
        row = session.get(OrderRow, demo.number) or OrderRow(number=demo.number)
        session.add(row)
        row.customer_id, row.status, row.carrier, row.tracking = demo.customer_id, demo.status, demo.carrier, demo.tracking
        row.ordered_on = today - demo.ordered * day
        row.expected_on = today + demo.expected * day if demo.expected is not None else None
        row.delivered_on = today - demo.delivered * day if demo.delivered is not None else None
        row.total_cents = sum(line.price_cents for line in demo.lines)
        session.flush()
        reset = demo.customer_id in RESET_CUSTOMER_IDS
        for line in demo.lines:
            # Found by (order, product) so purchase ids stay stable across re-seeding.
            purchase = session.scalars(
                select(PurchaseRow).where(PurchaseRow.order_number == demo.number, PurchaseRow.product == line.product)
            ).first()
            if purchase is None:
                purchase = PurchaseRow(order_number=demo.number, product=line.product, returned=False)
                session.add(purchase)
            elif reset:
                purchase.returned = False
            purchase.customer_id, purchase.category, purchase.price_cents = demo.customer_id, line.category, line.price_cents
            purchase.purchased_on = row.ordered_on
            purchase.delivered_on = row.delivered_on
            # Warranty runs from delivery; until then provisionally from the order date.
            purchase.warranty_until = _warranty_until(row.delivered_on or row.ordered_on, line.warranty)
    session.flush()


def _seed_outages(session: Session, now: dt.datetime) -> None:
    hour = dt.timedelta(hours=1)
    for demo in OUTAGES:
        row = session.scalars(select(OutageRow).where(OutageRow.seed_key == demo.key)).first()
        if row is None:
            row = OutageRow(seed_key=demo.key)
            session.add(row)
        row.service, row.description_nl, row.description_en = demo.service, demo.description_nl, demo.description_en
        row.started_at = now - demo.started * hour
        row.expected_fix_at = now + demo.fix * hour if demo.fix is not None else None
        row.resolved_at = now - demo.resolved * hour if demo.resolved is not None else None
        session.flush()  # a new outage needs its id for the postcodes
        session.execute(delete(OutagePostcodeRow).where(OutagePostcodeRow.outage_id == row.id))
        session.add_all(OutagePostcodeRow(outage_id=row.id, postcode=code) for code in demo.postcodes)
    session.flush()


def _seed_billing(session: Session, today: dt.date, now: dt.datetime) -> None:
    """Invoices, payments (their refunds undone) and newsletter subscriptions, found by natural keys."""
    for demo in INVOICES:
        row = session.get(InvoiceRow, demo.number) or InvoiceRow(number=demo.number)
        session.add(row)
        row.customer_id, row.order_number, row.amount_cents, row.status = (
            demo.customer_id, demo.order_number, demo.amount_cents, demo.status)
        row.issued_on = today - dt.timedelta(days=demo.issued)
        row.due_on = row.issued_on + dt.timedelta(days=demo.due)
    for payment in PAYMENTS:
        row = session.scalars(select(PaymentRow).where(PaymentRow.seed_key == payment.key)).first()
        if row is None:
            row = PaymentRow(seed_key=payment.key)
            session.add(row)
        row.customer_id, row.order_number, row.amount_cents = payment.customer_id, payment.order_number, payment.amount_cents
        row.method, row.status, row.failure_reason = payment.method, payment.status, payment.failure_reason
        row.created_at = now - dt.timedelta(hours=payment.hours_ago)
        row.refund_reference, row.refund_due_on = None, None
    # A demo customer the bot put on the newsletter goes back to "never subscribed".
    session.execute(delete(NewsletterRow).where(NewsletterRow.customer_id.in_(RESET_CUSTOMER_IDS),
                                                NewsletterRow.customer_id.notin_(list(NEWSLETTER))))
    for customer_id, subscribed in NEWSLETTER.items():
        row = session.get(NewsletterRow, customer_id) or NewsletterRow(customer_id=customer_id)
        session.add(row)
        row.subscribed, row.changed_at = subscribed, now - dt.timedelta(days=100)
    session.flush()


def _counts(session: Session) -> Dict[str, int]:
    tables = {
        "customers": CustomerRow, "orders": OrderRow, "purchases": PurchaseRow, "outages": OutageRow,
        "outage_postcodes": OutagePostcodeRow, "shipments": ShipmentRow, "refunds": RefundRow,
        "password_resets": PasswordResetRow, "promises": PromiseRow, "refund_policy": RefundPolicyRow,
        "order_returns": OrderReturnRow, "order_deliveries": OrderDeliveryRow, "invoices": InvoiceRow,
        "invoice_copies": InvoiceCopyRow, "payments": PaymentRow, "signup_tokens": SignupTokenRow,
        "privacy_requests": PrivacyRequestRow, "newsletter_subscriptions": NewsletterRow, "feedback": FeedbackRow,
        "goodwill": GoodwillRow, "problem_contacts": ProblemContactRow,
    }
    return {name: session.scalar(select(func.count()).select_from(table)) or 0 for name, table in tables.items()}


def seed(backend: SqlBackend, today: Optional[dt.date] = None) -> Dict[str, int]:
    """Creates missing tables and (re)seeds the demo data in one transaction; returns row counts.

    Raises BackendUnavailable when the database cannot be reached.
    """
    today = today or dt.date.today()
    # Outages are hours old: anchor them at the current time of day on ``today``.
    now = dt.datetime.combine(today, dt.datetime.now(UTC).time(), UTC)
    backend.create_schema()
    with backend.transaction() as session:
        policy = session.get(RefundPolicyRow, 1) or RefundPolicyRow(id=1)
        policy.days_after_delivery, policy.max_amount_cents = POLICY["days_after_delivery"], POLICY["max_amount_cents"]
        session.add(policy)
        _reset_demo_customers(session)
        _seed_customers(session)
        _seed_orders(session, today)
        _seed_outages(session, now)
        _seed_billing(session, today, now)
        return _counts(session)


def is_seeded(backend: SqlBackend) -> bool:
    """True when the database already has customers (so a first start has happened)."""
    try:
        with backend.transaction() as session:
            return session.query(CustomerRow).first() is not None
    except BackendUnavailable:
        return False  # no tables yet (or unreachable: seeding will say so)


def main() -> None:
    """CLI: seed the database at $KLANTCONTACT_DB_URL (default var/helder.db), print the counts."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--if-empty", action="store_true", help="only seed a database without customers")
    args = parser.parse_args()
    backend = SqlBackend()
    where = backend.engine.url.render_as_string(hide_password=True)
    if args.if_empty and is_seeded(backend):
        backend.create_schema()  # tables added since it was seeded (new cases) are created, data kept
        print(f"database {where} already has data (make seed refreshes the demo data)")
        return
    counts = seed(backend)
    print(f"seeded {where}: " + ", ".join(f"{count} {name}" for name, count in counts.items()))


if __name__ == "__main__":
    main()
