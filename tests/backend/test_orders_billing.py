"""Issue 13 cases on the SQL backend (SQLite and PostgreSQL): cancel and change an order,
invoices, failed and double payments, sign-up links, account deletion, newsletter, feedback."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, update

from actions.backend.base import NotEligible, NotFound
from actions.backend.sql import (
    FeedbackRow, InvoiceCopyRow, NewsletterRow, OrderReturnRow, PaymentRow, SignupTokenRow, next_working_day,
)
from tests.backend.test_sql_backend import AHMED, PIETER, SANNE, count

UTC = dt.timezone.utc
MILA, THOMAS, KEVIN = "41726358", "36150482", "52093817"
MILA_PROCESSING, MILA_TO_CHANGE, MILA_SHIPPED = "2024121501", "2024121502", "2024121503"
THOMAS_UNPAID, THOMAS_CHARGED_TWICE = "2024121504", "2024121505"


def status_of(backend, customer_id: str, number: str) -> str:
    return {o.number: o for o in backend.orders(customer_id)}[number].status


# -- cancel -------------------------------------------------------------------------------


def test_cancel_a_processing_order_refunds_it_at_once(backend):
    cancellation = backend.cancel_order(MILA, MILA_PROCESSING, conversation_id="c-1")
    today = dt.date.today()
    assert cancellation.outcome == "cancelled" and cancellation.order_return is None
    refund = cancellation.refund
    assert re.fullmatch(rf"RF-{today:%Y%m%d}-\d{{4}}", refund.reference)
    assert (refund.order_number, refund.amount_cents, refund.due_on) == (MILA_PROCESSING, 5999, today + dt.timedelta(days=5))
    assert status_of(backend, MILA, MILA_PROCESSING) == "cancelled"
    [promise] = backend.promises(MILA)
    assert (promise.kind, promise.reference, promise.conversation_id) == ("refund", refund.reference, "c-1")
    assert "€ 59,99" in promise.description
    # Asked again (a retry, a second message): the same cancellation, no second refund.
    assert backend.cancel_order(MILA, MILA_PROCESSING) == cancellation
    assert len(backend.promises(MILA)) == 1


def test_cancel_an_unpaid_order_refunds_nothing(backend):
    cancellation = backend.cancel_order(THOMAS, THOMAS_UNPAID)
    assert (cancellation.outcome, cancellation.refund) == ("cancelled", None)
    assert backend.promises(THOMAS) == []
    with pytest.raises(NotFound):  # a cancelled order no longer waits for its payment
        backend.failed_payment(THOMAS)


@pytest.mark.parametrize("customer_id, number", [(MILA, MILA_SHIPPED), (PIETER, "2024120451")])  # shipped, late
def test_cancel_a_shipped_order_starts_the_return(backend, customer_id, number):
    cancellation = backend.cancel_order(customer_id, number)
    today = dt.date.today()
    assert cancellation.outcome == "return_started" and cancellation.refund is None
    order_return = cancellation.order_return
    assert re.fullmatch(rf"RT-{today:%Y%m%d}-\d{{4}}", order_return.reference)
    assert order_return.return_label == f"RL-{order_return.reference}"
    assert order_return.return_by == today + dt.timedelta(days=14) and order_return.status == "open"
    [promise] = backend.promises(customer_id)
    assert (promise.kind, promise.reference) == ("return", order_return.reference)
    assert promise.due_at.date() >= order_return.return_by
    assert backend.cancel_order(customer_id, number) == cancellation
    assert count(backend, OrderReturnRow, order_number=number) == 1 and len(backend.promises(customer_id)) == 1


@pytest.mark.parametrize("customer_id, number, reason", [
    (SANNE, "2024097710", "delivered"),
    (AHMED, "2024110032", "lost"),
])
def test_cancel_refused_for_delivered_and_lost_orders(backend, customer_id, number, reason):
    with pytest.raises(NotEligible) as raised:
        backend.cancel_order(customer_id, number)
    assert raised.value.reason == reason
    assert backend.promises(customer_id) == [] and count(backend, OrderReturnRow) == 0


def test_cancel_someone_elses_order_is_not_found(backend):
    for number in (MILA_PROCESSING, "0000000000"):
        with pytest.raises(NotFound):
            backend.cancel_order(THOMAS, number)
    assert status_of(backend, MILA, MILA_PROCESSING) == "processing"


# -- change --------------------------------------------------------------------------------


def test_change_the_delivery_address_and_day_before_shipping(backend):
    change = backend.change_order(MILA, MILA_TO_CHANGE, address="Markt 1, 5611ab Eindhoven")
    assert (change.postcode, change.street, change.delivery_day) == ("5611 AB", "Markt 1, Eindhoven", None)
    day = next_working_day(next_working_day(dt.date.today()))
    change = backend.change_order(MILA, MILA_TO_CHANGE, delivery_day=day)
    assert (change.postcode, change.delivery_day) == ("5611 AB", day)  # the address change is kept
    assert {o.number: o for o in backend.orders(MILA)}[MILA_TO_CHANGE].expected_on == day
    assert backend.get_customer(MILA).postcode == "5611 AZ"  # the customer's own address is untouched


def test_change_starts_from_the_customers_address(backend):
    change = backend.change_order(MILA, MILA_TO_CHANGE, delivery_day=next_working_day(dt.date.today()))
    assert (change.street, change.postcode, change.city) == ("Stratumseind 20", "5611 AZ", "Eindhoven")


def _saturday_ahead() -> dt.date:
    today = dt.date.today()
    return today + dt.timedelta(days=(5 - today.weekday()) % 7 or 7)


@pytest.mark.parametrize("kwargs", [
    {"address": "Meir 45, 2000 Antwerpen"},  # a Belgian postcode for a Dutch customer
    {"address": "5611 AB"},  # no street
    {"delivery_day": dt.date.today()},  # too early
    {"delivery_day": dt.date.today() - dt.timedelta(days=3)},
    {"delivery_day": dt.date.today() + dt.timedelta(days=40)},  # beyond the policy's 14 days
    {"delivery_day": _saturday_ahead()},
    {},  # nothing to change
])
def test_change_refuses_what_cannot_be_delivered(backend, kwargs):
    with pytest.raises(ValueError):
        backend.change_order(MILA, MILA_TO_CHANGE, **kwargs)
    assert {o.number: o for o in backend.orders(MILA)}[MILA_TO_CHANGE].expected_on == dt.date.today() + dt.timedelta(days=3)


def test_change_refused_once_shipped_or_cancelled(backend):
    tomorrow = next_working_day(dt.date.today())
    with pytest.raises(NotEligible) as raised:
        backend.change_order(MILA, MILA_SHIPPED, address="Markt 1, 5611 AB Eindhoven")
    assert raised.value.reason == "already_shipped"
    with pytest.raises(NotEligible) as raised:
        backend.change_order(PIETER, "2024120451", delivery_day=tomorrow)  # late: on its way
    assert raised.value.reason == "already_shipped"
    backend.cancel_order(MILA, MILA_PROCESSING)
    with pytest.raises(NotEligible) as raised:
        backend.change_order(MILA, MILA_PROCESSING, delivery_day=tomorrow)
    assert raised.value.reason == "cancelled"
    with pytest.raises(NotFound):
        backend.change_order(THOMAS, MILA_TO_CHANGE, delivery_day=tomorrow)


# -- invoices --------------------------------------------------------------------------------


def test_invoices_newest_first_and_only_the_customers(backend):
    invoices = backend.invoices(MILA)
    assert [i.number for i in invoices] == ["F2024-121501", "F2024-121503"]
    assert (invoices[1].amount_cents, invoices[1].order_number, invoices[1].status) == (8999, MILA_SHIPPED, "paid")
    assert invoices[0].issued_on == dt.date.today() and invoices[0].due_on == dt.date.today() + dt.timedelta(days=14)
    assert [i.number for i in backend.invoices(THOMAS)] == ["F2024-121505"]
    assert backend.invoices(SANNE) == []


def test_invoice_copy_goes_to_the_address_on_file(backend):
    copy = backend.send_invoice_copy(MILA, "f2024-121503")
    assert copy.invoice.number == "F2024-121503" and copy.masked_email == "m***s@example.nl"
    assert "mila" not in copy.masked_email and copy.sent_at.tzinfo is not None
    with backend.transaction() as session:
        [row] = session.scalars(select(InvoiceCopyRow)).all()
        assert (row.customer_id, row.invoice_number, row.sent_to) == (MILA, "F2024-121503", "mila.hendriks@example.nl")


def test_invoice_copy_of_someone_elses_invoice_is_not_found(backend):
    for number in ("F2024-121505", "F1999-000000"):
        with pytest.raises(NotFound):
            backend.send_invoice_copy(MILA, number)
    assert count(backend, InvoiceCopyRow) == 0


# -- payments ----------------------------------------------------------------------------------


def test_failed_payment_keeps_the_order_for_the_policys_days(backend):
    failed = backend.failed_payment(THOMAS)
    assert (failed.order_number, failed.amount_cents, failed.method, failed.reason) == (
        THOMAS_UNPAID, 14999, "bancontact", "insufficient_funds")
    assert failed.hold_days == 7 and failed.kept_until == failed.failed_at.date() + dt.timedelta(days=7)
    assert dt.datetime.now(UTC) - dt.timedelta(hours=21) < failed.failed_at < dt.datetime.now(UTC)
    assert backend.failed_payment(THOMAS, THOMAS_UNPAID) == failed


def test_no_failed_payment_once_paid_or_for_others(backend):
    with pytest.raises(NotFound):
        backend.failed_payment(MILA)
    with pytest.raises(NotFound):
        backend.failed_payment(THOMAS, THOMAS_CHARGED_TWICE)
    with backend.transaction() as session:
        session.add(PaymentRow(customer_id=THOMAS, order_number=THOMAS_UNPAID, amount_cents=14999, method="ideal",
                               status="paid", created_at=dt.datetime.now(UTC)))
    with pytest.raises(NotFound):
        backend.failed_payment(THOMAS)


def test_double_charge_refunded_at_once(backend):
    refund = backend.refund_duplicate_charge(THOMAS, conversation_id="c-2")
    today = dt.date.today()
    assert re.fullmatch(rf"RC-{today:%Y%m%d}-\d{{4}}", refund.reference)
    assert (refund.order_number, refund.amount_cents, refund.due_on) == (
        THOMAS_CHARGED_TWICE, 17999, today + dt.timedelta(days=5))
    [promise] = backend.promises(THOMAS)
    assert (promise.kind, promise.reference, promise.conversation_id) == ("refund", refund.reference, "c-2")
    statuses = sorted(p.status for p in _payments(backend, THOMAS_CHARGED_TWICE))
    assert statuses == ["paid", "refunded"]
    # Asked again: the same refund, never a second one.
    assert backend.refund_duplicate_charge(THOMAS, THOMAS_CHARGED_TWICE) == refund
    assert len(backend.promises(THOMAS)) == 1


def _payments(backend, number):
    with backend.transaction() as session:
        return session.scalars(select(PaymentRow).where(PaymentRow.order_number == number)).all()


@pytest.mark.parametrize("customer_id, number", [
    (MILA, None),  # each order charged once
    (THOMAS, THOMAS_UNPAID),  # failed, not charged
    (SANNE, None),  # no payments at all
    (MILA, THOMAS_CHARGED_TWICE),  # someone else's
])
def test_no_double_charge_found(backend, customer_id, number):
    with pytest.raises(NotFound):
        backend.refund_duplicate_charge(customer_id, number)
    assert backend.promises(customer_id) == []


def test_two_different_charges_are_not_a_double_charge(backend):
    with backend.transaction() as session:
        session.execute(update(PaymentRow).where(PaymentRow.seed_key == "thomas-hue-2").values(amount_cents=500))
    with pytest.raises(NotFound):
        backend.refund_duplicate_charge(THOMAS)


# -- account -------------------------------------------------------------------------------------


def test_signup_link_has_a_one_time_token_and_no_personal_data(backend):
    link = backend.signup_link()
    url = urlparse(link.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://localhost:8080/account/new"
    [token] = parse_qs(url.query)["token"]
    assert len(token) >= 40 and set(parse_qs(url.query)) == {"token"}
    assert dt.timedelta(hours=23) < link.expires_at - dt.datetime.now(UTC) <= dt.timedelta(hours=24)
    with backend.transaction() as session:
        [row] = session.scalars(select(SignupTokenRow)).all()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token  # only the hash is kept
    assert backend.redeem_signup_token(token) is True
    assert backend.redeem_signup_token(token) is False
    assert backend.redeem_signup_token("made-up") is False and backend.redeem_signup_token("") is False
    assert backend.signup_link().url != link.url


def test_an_expired_signup_token_is_refused(backend):
    token = parse_qs(urlparse(backend.signup_link().url).query)["token"][0]
    with backend.transaction() as session:
        session.execute(update(SignupTokenRow).values(expires_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1)))
    assert backend.redeem_signup_token(token) is False


def test_account_deletion_is_recorded_with_its_due_date(backend):
    request = backend.request_account_deletion(KEVIN, conversation_id="c-3")
    today = dt.date.today()
    assert re.fullmatch(rf"PV-{today:%Y%m%d}-\d{{4}}", request.reference)
    assert (request.kind, request.status, request.due_on) == ("erasure", "open", today + dt.timedelta(days=30))
    [promise] = backend.promises(KEVIN)
    assert (promise.kind, promise.reference, promise.conversation_id) == ("privacy", request.reference, "c-3")
    assert promise.due_at.date() in (request.due_on, request.due_on + dt.timedelta(days=1))
    assert backend.request_account_deletion(KEVIN) == request and len(backend.promises(KEVIN)) == 1
    with pytest.raises(NotFound):
        backend.request_account_deletion("00000000")


# -- newsletter ----------------------------------------------------------------------------------


def test_unsubscribe_at_once_and_idempotent(backend):
    first = backend.unsubscribe_newsletter(MILA)
    assert first.was_subscribed and first.unsubscribed_at.tzinfo is not None
    again = backend.unsubscribe_newsletter(MILA)
    assert not again.was_subscribed and again.unsubscribed_at == first.unsubscribed_at
    assert count(backend, NewsletterRow, customer_id=MILA, subscribed=False) == 1


def test_unsubscribe_when_already_off_or_never_on(backend):
    already = backend.unsubscribe_newsletter(THOMAS)
    assert not already.was_subscribed and already.unsubscribed_at < dt.datetime.now(UTC) - dt.timedelta(days=50)
    never = backend.unsubscribe_newsletter(KEVIN)
    assert (never.was_subscribed, never.unsubscribed_at) == (False, None)
    with pytest.raises(NotFound):
        backend.unsubscribe_newsletter("00000000")


def test_subscribe_puts_on_once(backend):
    assert backend.subscribe_newsletter(KEVIN) is True  # never on it
    assert backend.subscribe_newsletter(KEVIN) is False
    assert backend.subscribe_newsletter(THOMAS) is True  # was off
    assert backend.subscribe_newsletter(MILA) is False  # already on
    assert count(backend, NewsletterRow, customer_id=KEVIN, subscribed=True) == 1
    assert backend.unsubscribe_newsletter(KEVIN).was_subscribed
    with pytest.raises(NotFound):
        backend.subscribe_newsletter("00000000")


# -- feedback ------------------------------------------------------------------------------------


def test_feedback_is_kept_verbatim_and_erasable(backend):
    words = "  Top geholpen!\nMaar de app crasht 2x 👎  "
    mine = backend.add_feedback(words, "nl", "whatsapp", customer_id=KEVIN, conversation_id="c-4")
    anonymous = backend.add_feedback("Great chat", "en", "web")
    assert mine.text == words and (mine.language, mine.channel, mine.customer_id) == ("nl", "whatsapp", KEVIN)
    assert anonymous.customer_id is None and anonymous.created_at.tzinfo is not None
    assert [f.id for f in backend.feedback()] == [anonymous.id, mine.id]
    assert backend.feedback()[1] == mine
    assert backend.feedback(since=dt.datetime.now(UTC) + dt.timedelta(minutes=1)) == []
    assert backend.erase_feedback(mine.id) is True and backend.erase_feedback(mine.id) is False
    assert [f.id for f in backend.feedback()] == [anonymous.id]


@pytest.mark.parametrize("kwargs", [
    {"text": "   ", "language": "nl", "channel": "web"},
    {"text": "x" * 20_001, "language": "nl", "channel": "web"},
    {"text": "ok", "language": "", "channel": "web"},
    {"text": "ok", "language": "nl", "channel": ""},
])
def test_feedback_refuses_empty_or_unlabelled_input(backend, kwargs):
    with pytest.raises(ValueError):
        backend.add_feedback(**kwargs)
    with pytest.raises(NotFound):
        backend.add_feedback("ok", "nl", "web", customer_id="00000000")
    assert count(backend, FeedbackRow) == 0
