"""Erasure of one customer in the SQL backend (AVG/GDPR), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from actions.backend.sql import (
    CustomerRow, FeedbackRow, GoodwillRow, InvoiceCopyRow, InvoiceRow, NewsletterRow, OrderDeliveryRow,
    OrderReturnRow, OrderRow, OutageRow, PasswordResetRow, PaymentRow, PrivacyRequestRow, ProblemContactRow,
    PromiseRow, PurchaseRow, RefundRow, ShipmentRow, SignupTokenRow,
)
from tests.backend.test_sql_backend import PIETER, SANNE, count, purchase_id

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


MILA, THOMAS, KEVIN = "41726358", "36150482", "52093817"
ISSUE_13_ROWS = (OrderReturnRow, OrderDeliveryRow, InvoiceRow, InvoiceCopyRow, PaymentRow, PrivacyRequestRow,
                 NewsletterRow, FeedbackRow, GoodwillRow, ProblemContactRow, RefundRow, PromiseRow)


def test_erase_deletes_the_newer_personal_records_too(backend):
    next_day = next_working_day_after_tomorrow()
    backend.cancel_order(MILA, "2024121501")  # a refund
    backend.cancel_order(MILA, "2024121503")  # a return
    backend.change_order(MILA, "2024121502", delivery_day=next_day)
    backend.send_invoice_copy(MILA, "F2024-121501")
    backend.request_account_deletion(MILA)
    backend.add_feedback("Fijn geholpen", "nl", "web", customer_id=MILA)
    with backend.transaction() as session:  # Mila's speaker became late: a gesture for it
        session.get(OrderRow, "2024121503").status = "late"
    backend.grant_goodwill(MILA, "late_order", "2024121503")
    anonymous = backend.add_feedback("Anoniem: prima", "nl", "whatsapp")
    kevins = backend.add_feedback("Mijn föhn!", "nl", "web", customer_id=KEVIN)
    kevins_gesture = backend.grant_goodwill(KEVIN, "late_order", "2024121510")
    backend.signup_link()
    for row in ISSUE_13_ROWS:
        assert count(backend, row, customer_id=MILA) > 0, row.__tablename__
    others = {row: count(backend, row, customer_id=THOMAS) for row in ISSUE_13_ROWS}

    deleted = backend.erase_customer(MILA)

    for row in ISSUE_13_ROWS:
        assert count(backend, row, customer_id=MILA) == 0, row.__tablename__
        assert deleted[row.__tablename__] > 0, row.__tablename__
    assert {row: count(backend, row, customer_id=THOMAS) for row in ISSUE_13_ROWS} == others
    assert [f.id for f in backend.feedback()] == [kevins.id, anonymous.id]
    assert backend.goodwill(KEVIN) == [kevins_gesture]
    assert count(backend, SignupTokenRow) == 1  # no personal data in it
    assert backend.erase_customer(MILA) == {}


def next_working_day_after_tomorrow() -> dt.date:
    from actions.backend.sql import next_working_day

    return next_working_day(next_working_day(dt.date.today()))
