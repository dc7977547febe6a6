"""Erasure of one customer in the SQL backend (AVG/GDPR), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from actions.backend.sql import (
    CustomerRow, OrderRow, PasswordResetRow, PromiseRow, PurchaseRow, RefundRow, ShipmentRow, OutageRow,
)
from tests.backend.test_sql_backend import (  # noqa: F401 - fixtures
    PIETER, SANNE, backend, count, postgres_url, purchase_id,
)

UTC = dt.timezone.utc
SANNES_ROWS = (OrderRow, PurchaseRow, ShipmentRow, RefundRow, PasswordResetRow, PromiseRow)


def test_erase_deletes_one_customer_and_leaves_the_others(backend):
    backend.ship_replacement(SANNE, purchase_id(backend, SANNE, "printer"))
    backend.refund(SANNE, "2024097710")
    backend.reset_password(SANNE)
    backend.add_promise(SANNE, "callback", "terugbellen", dt.datetime(2030, 1, 1, tzinfo=UTC), conversation_id="c-s")
    backend.add_promise(PIETER, "callback", "terugbellen", dt.datetime(2030, 1, 1, tzinfo=UTC), conversation_id="c-p")
    pieter_before = {row: count(backend, row, customer_id=PIETER) for row in (OrderRow, PurchaseRow, PromiseRow)}
    outages = count(backend, OutageRow)

    deleted = backend.erase_customer(SANNE)

    assert deleted["customers"] == 1 and deleted["promises"] >= 1 and deleted["shipments"] >= 1
    assert deleted["refunds"] >= 1 and deleted["password_resets"] >= 1 and deleted["orders"] >= 1
    assert backend.get_customer(SANNE) is None
    for row in SANNES_ROWS:
        assert count(backend, row, customer_id=SANNE) == 0, row.__tablename__
    assert count(backend, CustomerRow, id=SANNE) == 0
    # Pieter and the outages are untouched
    assert backend.get_customer(PIETER) is not None
    assert {row: count(backend, row, customer_id=PIETER) for row in pieter_before} == pieter_before
    assert [p.conversation_id for p in backend.promises(PIETER)] == ["c-p"]
    assert count(backend, OutageRow) == outages


def test_erase_is_idempotent_and_unknown_customers_are_nothing(backend):
    assert backend.erase_customer(SANNE)["customers"] == 1
    assert backend.erase_customer(SANNE) == {}
    assert backend.erase_customer("99999999") == {}
