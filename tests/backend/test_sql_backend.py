"""The SQL backend on SQLite and PostgreSQL, against the seeded demo data (the ``backend``
fixture: tests/backend/conftest.py)."""

from __future__ import annotations

import datetime as dt
import re
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from actions.backend.base import BackendUnavailable, CustomerBackend, NotEligible, NotFound
from actions.backend.seed import seed
from actions.backend.sql import (
    DEFAULT_SQLITE_PATH,
    PasswordResetRow,
    PromiseRow,
    PurchaseRow,
    ShipmentRow,
    SqlBackend,
    _write_ahead_log,
    next_working_day,
)
from actions.identifier_parsing import Identifier

UTC = dt.timezone.utc

SANNE, PIETER, EMILY, AHMED = "48213377", "51937204", "60418825", "72055139"
LOTTE, JAN, DAAN, SOFIE = "39481726", "45678912", "30571846", "53820471"


def count(backend: SqlBackend, table, **where) -> int:
    with backend.transaction() as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return session.scalar(query)


def purchase_id(backend: SqlBackend, customer_id: str, category: str) -> int:
    """The id of the customer's newest purchase in ``category`` (or with that product name)."""
    return next(p.id for p in backend.purchases(customer_id) if category in (p.category, p.product))


# -- customers --------------------------------------------------------------------------------


def test_implements_the_protocol(backend):
    assert isinstance(backend, CustomerBackend)


def test_demo_customers_tests_and_stories_rely_on(backend):
    sanne = backend.get_customer(SANNE)
    assert (sanne.name, sanne.email, sanne.phone, sanne.postcode, sanne.country) == (
        "Sanne de Vries", "sanne.devries@example.nl", "+31612345678", "3511 AB", "NL")
    assert backend.get_customer(AHMED).account_locked
    assert backend.get_customer(EMILY).language == "en"


@pytest.mark.parametrize("identifier, postcode", [
    (Identifier("customer_number", SANNE), "3511 AB"),
    (Identifier("customer_number", SANNE), "3511ab"),
    (Identifier("email", "Sanne.DeVries@Example.NL"), "3511 AB"),
    (Identifier("phone", "06 1234 5678"), "3511AB"),
    (Identifier("phone", "+31 6 12345678"), "3511 ab"),
    (Identifier("phone", "0031612345678"), "3511 AB"),
])
def test_verify_accepts_the_right_postcode_in_any_notation(backend, identifier, postcode):
    assert backend.verify(identifier, postcode).id == SANNE


def test_verify_in_belgium_and_the_uk(backend):
    assert backend.verify(Identifier("phone", "0032 470 12 34 56"), "2000").id == PIETER
    assert backend.verify(Identifier("email", "emily.clarke@example.co.uk"), "sw1a1aa").id == EMILY


@pytest.mark.parametrize("identifier, postcode", [
    (Identifier("customer_number", SANNE), "9999 ZZ"),  # wrong postcode
    (Identifier("customer_number", SANNE), "2000"),
    (Identifier("customer_number", SANNE), "no idea"),
    (Identifier("customer_number", "99999999"), "3511 AB"),  # unknown customer
    (Identifier("email", "nobody@example.nl"), "3511 AB"),
    (Identifier("customer_number", PIETER), "3511 AB"),  # someone else's postcode
])
def test_verify_refuses_a_mismatch(backend, identifier, postcode):
    assert backend.verify(identifier, postcode) is None


def test_find_customer_without_verification(backend):
    assert backend.find_customer(Identifier("customer_number", LOTTE)).name == "Lotte Visser"
    assert backend.find_customer(Identifier("email", "JAN.PEETERS@example.be")).id == JAN
    assert backend.find_customer(Identifier("phone", "06-87654321")).id == AHMED
    assert backend.find_customer(Identifier("phone", "+31600000000")) is None
    assert backend.find_by_phone("+44 7700 900123").id == EMILY
    assert backend.get_customer("00000000") is None


# -- orders, purchases --------------------------------------------------------------------------


def test_orders_newest_first_with_their_items(backend):
    orders = backend.orders(SANNE)
    assert [o.number for o in orders] == ["2024118832", "2024097710", "2024088123"]
    assert [o.ordered_on for o in orders] == sorted((o.ordered_on for o in orders), reverse=True)
    assert orders[1].items == ["HP printer"] and orders[1].total_cents == 14999
    assert backend.orders("00000000") == []


@pytest.mark.parametrize("customer_id, number, status", [
    (PIETER, "2024120451", "late"),
    (EMILY, "2024121190", "processing"),
    (AHMED, "2024110032", "lost"),
    (SANNE, "2024118832", "shipped"),
    (SANNE, "2024097710", "delivered"),
])
def test_orders_in_every_status(backend, customer_id, number, status):
    assert {o.number: o.status for o in backend.orders(customer_id)}[number] == status


def test_orders_are_only_the_customers_own(backend):
    assert {o.customer_id for o in backend.orders(SANNE)} == {SANNE}
    assert "2024118832" not in {o.number for o in backend.orders(PIETER)}
    assert {p.customer_id for p in backend.purchases(EMILY)} == {EMILY}


def test_purchases_newest_first_with_warranty(backend):
    purchases = backend.purchases(SANNE)
    assert [p.purchased_on for p in purchases] == sorted((p.purchased_on for p in purchases), reverse=True)
    today = dt.date.today()
    hp8230 = next(p for p in purchases if p.product == "Philips föhn HP8230")
    assert hp8230.category == "föhn" and hp8230.order_number == "2024088123" and hp8230.in_warranty(today)
    kettle = next(p for p in backend.purchases(EMILY) if p.category == "kettle")
    assert kettle.warranty_until == kettle.delivered_on + dt.timedelta(days=365) and not kettle.in_warranty(today)
    assert next(p for p in backend.purchases(PIETER)).delivered_on is None


def test_someone_elses_order_or_purchase_is_refused(backend):
    sannes_purchase = purchase_id(backend, SANNE, "föhn")
    with pytest.raises(NotFound):
        backend.ship_replacement(PIETER, sannes_purchase)
    with pytest.raises(NotFound):
        backend.refund(PIETER, "2024097710")
    with pytest.raises(NotFound):
        backend.refund(SANNE, "0000000000")
    with pytest.raises(NotFound):
        backend.ship_replacement(SANNE, 999_999)
    assert count(backend, ShipmentRow) == 0 and backend.promises(SANNE) == []


# -- outages ---------------------------------------------------------------------------------


def test_outage_in_the_affected_area(backend):
    now = dt.datetime.now(UTC)
    outages = backend.outages_at("3581 KP", now)
    assert [o.service for o in outages] == ["internet"]
    assert "3581" in outages[0].postcodes and outages[0].started_at <= now
    assert dt.timedelta(hours=3) < outages[0].expected_fix_at - now < dt.timedelta(hours=5)
    assert outages[0].expected_fix_at.tzinfo is not None
    assert [o.service for o in backend.outages_at("3582ab")] == ["internet"]
    assert [o.service for o in backend.outages_at("9000")] == ["tv"]


def test_no_outage_elsewhere(backend):
    assert backend.outages_at("3511 AB") == []
    assert backend.outages_at("2000") == []
    assert backend.outages_at("not a postcode") == []


def test_a_resolved_outage_is_not_returned(backend):
    assert backend.outages_at("3011 AD") == []
    # ...but it was active the day before yesterday's fix.
    yesterday = dt.datetime.now(UTC) - dt.timedelta(hours=27)
    assert [o.service for o in backend.outages_at("3011 AD", yesterday)] == ["internet"]


def test_outages_since_include_the_resolved_ones_of_that_period(backend):
    now = dt.datetime.now(UTC)
    [haarlem] = backend.outages_since("2011 AB", now - dt.timedelta(days=7))
    assert haarlem.resolved_at is not None and 25 < (haarlem.resolved_at - haarlem.started_at).total_seconds() / 3600 < 27
    assert backend.outages_since("2011 AB", now - dt.timedelta(hours=3)) == []  # fixed 4 hours ago
    assert backend.outages_at("2011 AB") == []
    assert [o.service for o in backend.outages_since("CF10 1EP", now - dt.timedelta(days=1))] == ["internet"]


def test_uk_postcodes_match_their_outward_code(backend):
    assert [o.service for o in backend.outages_at("m1 1ae")] == ["mobile"]
    assert backend.outages_at("SW1A 1AA") == []


# -- replacements ------------------------------------------------------------------------------


def test_replacement_in_warranty(backend):
    router = purchase_id(backend, LOTTE, "router")
    shipment = backend.ship_replacement(LOTTE, router)
    today = dt.date.today()
    assert re.fullmatch(rf"RV-{today:%Y%m%d}-\d{{4}}", shipment.reference)
    assert shipment.customer_id == LOTTE and shipment.purchase_id == router and shipment.carrier == "PostNL"
    assert shipment.expected_on == next_working_day(today) and shipment.expected_on.weekday() < 5
    assert shipment.pickup_on == shipment.expected_on
    [promise] = backend.promises(LOTTE)
    assert (promise.kind, promise.reference, promise.status) == ("replacement", shipment.reference, "open")
    assert promise.due_at.tzinfo is not None
    assert promise.due_at.date() in (shipment.expected_on, shipment.expected_on + dt.timedelta(days=1))
    assert promise.due_at > dt.datetime.combine(shipment.expected_on, dt.time(20), UTC)


def test_replacement_is_idempotent(backend):
    router = purchase_id(backend, LOTTE, "router")
    first = backend.ship_replacement(LOTTE, router)
    assert backend.ship_replacement(LOTTE, router) == first
    assert count(backend, ShipmentRow) == 1 and len(backend.promises(LOTTE)) == 1
    # Another purchase gets the day's next number and the carrier of its country.
    other = backend.ship_replacement(JAN, purchase_id(backend, JAN, "tv"))
    assert other.carrier == "bpost" and other.reference[-4:] == f"{int(first.reference[-4:]) + 1:04d}"


def test_replacement_ordered_on_friday_comes_on_monday(backend, monkeypatch):
    today = dt.date.today()
    friday = today + dt.timedelta(days=(4 - today.weekday()) % 7)
    monkeypatch.setattr(backend, "_today", lambda: friday)
    shipment = backend.ship_replacement(SANNE, purchase_id(backend, SANNE, "printer"))
    assert shipment.expected_on == friday + dt.timedelta(days=3)
    assert shipment.reference.startswith(f"RV-{friday:%Y%m%d}-")


@pytest.mark.parametrize("customer_id, category, reason", [
    (EMILY, "kettle", "out_of_warranty"),  # expired a month ago
    (DAAN, "tandenborstel", "out_of_warranty"),  # never had a warranty
    (DAAN, "phone", "out_of_warranty"),  # two years are over
    (PIETER, "headphones", "not_delivered"),
])
def test_no_replacement_outside_warranty(backend, customer_id, category, reason):
    with pytest.raises(NotEligible) as raised:
        backend.ship_replacement(customer_id, purchase_id(backend, customer_id, category))
    assert raised.value.reason == reason
    assert count(backend, ShipmentRow) == 0 and backend.promises(customer_id) == []


# -- refunds ----------------------------------------------------------------------------------


def test_refund_within_policy(backend):
    assert backend.refund_policy().days_after_delivery == 30
    assert backend.refund_policy().max_amount_cents == 100_000
    refund = backend.refund(SANNE, "2024097710")
    today = dt.date.today()
    assert re.fullmatch(rf"RF-{today:%Y%m%d}-\d{{4}}", refund.reference)
    assert (refund.customer_id, refund.order_number, refund.amount_cents) == (SANNE, "2024097710", 14999)
    assert refund.due_on == today + dt.timedelta(days=5)
    assert refund.return_label and refund.return_label.startswith("RL-")
    [promise] = backend.promises(SANNE)
    assert (promise.kind, promise.reference) == ("refund", refund.reference)
    assert promise.due_at.tzinfo is not None
    assert next(p for p in backend.purchases(SANNE) if p.order_number == "2024097710").returned


def test_refund_is_idempotent(backend):
    first = backend.refund(SANNE, "2024097710")
    assert backend.refund(SANNE, "2024097710") == first
    assert len(backend.promises(SANNE)) == 1


@pytest.mark.parametrize("customer_id, number, reason", [
    (SANNE, "2024088123", "too_late"),  # delivered 40 days ago
    (SANNE, "2024118832", "not_delivered"),  # on its way
    (AHMED, "2024110032", "not_delivered"),  # lost
    (SOFIE, "2024114502", "amount_too_high"),  # a person approves
])
def test_no_refund_outside_policy(backend, customer_id, number, reason):
    with pytest.raises(NotEligible) as raised:
        backend.refund(customer_id, number)
    assert raised.value.reason == reason
    assert backend.promises(customer_id) == []


def test_no_refund_for_goods_already_returned(backend):
    with backend.transaction() as session:
        for line in session.scalars(select(PurchaseRow).where(PurchaseRow.order_number == "2024097710")):
            line.returned = True
    with pytest.raises(NotEligible) as raised:
        backend.refund(SANNE, "2024097710")
    assert raised.value.reason == "already_refunded"


# -- account, contact details -----------------------------------------------------------------


def test_reset_password_unlocks(backend):
    assert backend.get_customer(AHMED).account_locked
    reset = backend.reset_password(AHMED)
    assert reset.email == "ahmed.elamrani@example.nl" and reset.unlocked
    assert not backend.get_customer(AHMED).account_locked
    again = backend.reset_password(AHMED)
    assert not again.unlocked and again.sent_at.tzinfo is not None
    assert count(backend, PasswordResetRow, customer_id=AHMED) == 2
    with pytest.raises(NotFound):
        backend.reset_password("00000000")


def test_update_email_and_phone(backend):
    updated = backend.update_contact_details(SANNE, "email", "  Sanne.Nieuw@Example.NL ")
    assert updated.email == "sanne.nieuw@example.nl"
    assert backend.find_customer(Identifier("email", "sanne.nieuw@example.nl")).id == SANNE
    assert backend.update_contact_details(SANNE, "phone", "06-11 12 99 88").phone == "+31611129988"
    assert backend.find_by_phone("0031 6 1112 9988").id == SANNE


def test_update_address(backend):
    updated = backend.update_contact_details(SANNE, "address", "Biltstraat 5, 3572bb Utrecht")
    assert updated.postcode == "3572 BB" and updated.street == "Biltstraat 5, Utrecht"
    assert backend.verify(Identifier("customer_number", SANNE), "3572 BB").id == SANNE
    uk = backend.update_contact_details(EMILY, "address", "221B Baker Street, NW1 6XE")
    assert (uk.postcode, uk.street) == ("NW1 6XE", "221B Baker Street")


@pytest.mark.parametrize("field, value", [
    ("email", "not-an-email"),
    ("email", "pieter.janssens@example.be"),  # someone else's
    ("phone", "12"),
    ("address", "Oudegracht zonder postcode"),
    ("address", "Meir 45, 2000 Antwerpen"),  # a Belgian postcode for a Dutch customer
    ("address", "3511 AB"),  # no street
    ("name", "Someone Else"),  # not a contact field
])
def test_update_refuses_invalid_values(backend, field, value):
    before = backend.get_customer(SANNE)
    with pytest.raises(ValueError):
        backend.update_contact_details(SANNE, field, value)
    assert backend.get_customer(SANNE) == before


def test_update_of_an_unknown_customer(backend):
    with pytest.raises(NotFound):
        backend.update_contact_details("00000000", "email", "x@example.nl")


# -- promises --------------------------------------------------------------------------------


def test_promises_oldest_due_first(backend):
    now = dt.datetime.now(UTC)
    later = backend.add_promise(SANNE, "callback", "Bellen", now + dt.timedelta(days=2), conversation_id="c1")
    soon = backend.add_promise(SANNE, "reply", "Mailen", now + dt.timedelta(hours=1), reference="MAIL-1")
    amsterdam = dt.timezone(dt.timedelta(hours=1))
    middle = backend.add_promise(SANNE, "redelivery", "Opnieuw bezorgen", (now + dt.timedelta(days=1)).astimezone(amsterdam))
    backend.add_promise(PIETER, "callback", "Niet van Sanne", now)
    promises = backend.promises(SANNE)
    assert [p.id for p in promises] == [soon.id, middle.id, later.id]
    assert all(p.due_at.tzinfo is not None and p.status == "open" and p.customer_id == SANNE for p in promises)
    assert promises[1].due_at == now + dt.timedelta(days=1)
    assert (later.conversation_id, soon.reference) == ("c1", "MAIL-1")
    assert backend.promises(SANNE, status="kept") == []
    with pytest.raises(NotFound):
        backend.add_promise("00000000", "callback", "x", now)


# -- seeding ---------------------------------------------------------------------------------


def test_seed_is_idempotent(backend):
    first = seed(backend)
    assert seed(backend) == first
    assert first["customers"] >= 12 and first["refund_policy"] == 1
    countries = {backend.get_customer(c).country for c in (SANNE, PIETER, EMILY)}
    assert countries == {"NL", "BE", "GB"}


def test_seed_resets_the_demo_customers_only(backend):
    ids_before = {p.id for p in backend.purchases(SANNE)}
    backend.refund(SANNE, "2024097710")
    backend.ship_replacement(SANNE, purchase_id(backend, SANNE, "Philips föhn HP8230"))
    backend.reset_password(AHMED)
    backend.update_contact_details(SANNE, "email", "ander@example.nl")
    noah = "37710254"  # not one of the customers the seed resets
    kept = backend.ship_replacement(noah, purchase_id(backend, noah, "router"))
    seed(backend)
    assert backend.get_customer(SANNE).email == "sanne.devries@example.nl"
    assert backend.get_customer(AHMED).account_locked
    assert backend.promises(SANNE) == [] and not any(p.returned for p in backend.purchases(SANNE))
    assert count(backend, PasswordResetRow, customer_id=AHMED) == 0
    assert {p.id for p in backend.purchases(SANNE)} == ids_before
    # What a conversation did for another customer stays.
    assert backend.ship_replacement(noah, kept.purchase_id) == kept
    assert count(backend, PromiseRow, customer_id=noah) == 1


def test_seed_moves_relative_dates(backend):
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    seed(backend, today=tomorrow)
    late = {o.number: o for o in backend.orders(PIETER)}["2024120451"]
    assert late.expected_on == tomorrow - dt.timedelta(days=3)
    assert count(backend, PurchaseRow) == count(backend, PurchaseRow, returned=False)


# -- failures --------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free now, nobody listening once closed


def test_unreachable_postgres_is_backend_unavailable():
    backend = SqlBackend(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/helder")
    with pytest.raises(BackendUnavailable):
        backend.get_customer(SANNE)
    with pytest.raises(BackendUnavailable):
        backend.create_schema()
    with pytest.raises(BackendUnavailable):
        seed(backend)


def test_sqlite_in_a_directory_that_cannot_exist(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    backend = SqlBackend(f"sqlite:///{blocker / 'sub' / 'helder.db'}")
    with pytest.raises(BackendUnavailable):
        backend.verify(Identifier("customer_number", SANNE), "3511 AB")
    with pytest.raises(BackendUnavailable):
        backend.create_schema()


def test_missing_tables_are_backend_unavailable(tmp_path):
    backend = SqlBackend(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BackendUnavailable):
        backend.orders(SANNE)


def test_nothing_is_created_before_use(tmp_path, monkeypatch):
    path = tmp_path / "lazy.db"
    monkeypatch.setenv("KLANTCONTACT_DB_URL", f"sqlite:///{path}")
    backend = SqlBackend()
    assert backend.url == f"sqlite:///{path}" and not path.exists()
    monkeypatch.delenv("KLANTCONTACT_DB_URL")
    assert SqlBackend().url == f"sqlite:///{DEFAULT_SQLITE_PATH}"
    assert SqlBackend("sqlite:///elsewhere.db").url == "sqlite:///elsewhere.db"


def test_sqlite_file_keeps_its_connections_and_writes_ahead(tmp_path):
    backend = SqlBackend(f"sqlite:///{tmp_path / 'pooled.db'}")
    backend.create_schema()
    seed(backend)
    opened = []
    sqlalchemy_event.listen(backend.engine, "connect", lambda connection, record: opened.append(connection))
    for _ in range(5):
        assert backend.verify(Identifier("customer_number", SANNE), "3511 AB") is not None
    assert opened == []  # the seed's pooled connection served them all (1.4's default opened five)
    # Connections move between the backend's worker threads (check_same_thread is off).
    with ThreadPoolExecutor(max_workers=3) as pool:
        found = list(pool.map(lambda _: backend.verify(Identifier("customer_number", SANNE), "3511 AB"), range(12)))
    assert all(customer is not None and customer.id == SANNE for customer in found)
    with sqlite3.connect(tmp_path / "pooled.db") as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    backend.dispose()


def test_sqlite_locked_by_another_connection_stays_in_its_journal(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    _write_ahead_log(other.cursor(), str(path))  # logged, not raised
    holder.execute("COMMIT")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    _write_ahead_log(other.cursor(), str(path))
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    _write_ahead_log(other.cursor(), ":memory:")  # nothing to do for a database in memory
    holder.close()
    other.close()
