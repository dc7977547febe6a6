"""The issue-13 solvers (actions/cases.py) with real trackers against the seeded SQLite backend.

The backend is shared by the whole session, so each test uses its own demo records or asserts
what stays true when run again.
"""

from __future__ import annotations

import asyncio
import re

from rasa_sdk.executor import CollectingDispatcher

from actions import cases
from actions.backend import get_backend
from tests.unit.conftest import make_tracker, responses

MILA, THOMAS, KEVIN, SANNE, LOTTE = "41726358", "36150482", "52093817", "48213377", "39481726"


def run(solver, customer_id=None, text="", language="nl", **slots):
    dispatcher = CollectingDispatcher()
    if customer_id:
        slots["customer_id"] = customer_id
    outcome = asyncio.run(solver(dispatcher, make_tracker(text, slots=slots, language=language)))
    return outcome, dispatcher.messages


def test_cancel_processing_order_refunds_with_a_reference():
    outcome, [message] = run(cases.solve_cancel_order, MILA, order_number="2024121501")
    assert message["response"] == "utter_cancel_done" and message["amount"] == "€ 59,99"
    assert re.fullmatch(r"RF-\d{8}-\d{4}", message["reference"]) and outcome.handoff_reason is None
    again, [repeat] = run(cases.solve_cancel_order, MILA, order_number="2024121501")
    assert repeat["reference"] == message["reference"]


def test_cancel_shipped_order_starts_the_return():
    outcome, [message] = run(cases.solve_cancel_order, MILA, language="en", order_number="2024121503")
    assert message["response"] == "utter_order_return_started" and message["amount"] == "€89.99"
    assert message["return_label"] == f"RL-{message['reference']}" and outcome.facts["return_by"]


def test_cancel_delivered_order_goes_to_the_refund():
    outcome, [message, refund] = run(cases.solve_cancel_order, SANNE, order_number="2024097710")
    assert message["response"] == "utter_cancel_delivered" and refund["response"].startswith("utter_refund_")
    assert "cancel 2024097710: delivered; refund" in outcome.result


def test_cancel_someone_elses_order():
    outcome, [message] = run(cases.solve_cancel_order, THOMAS, order_number="2024121502")
    assert message["response"] == "utter_order_not_found" and outcome.next_step == "done"


def test_change_order_address_then_refused_once_shipped():
    outcome, [message] = run(cases.solve_change_order, MILA, order_number="2024121502",
                             delivery_address="Markt 1, 5611 AB Eindhoven")
    assert message["response"] == "utter_order_changed" and "5611 AB" in message["address"]
    _, [late] = run(cases.solve_change_order, MILA, order_number="2024121503",
                    delivery_address="Markt 1, 5611 AB Eindhoven")
    assert late["response"] == "utter_order_change_too_late" and late["tracking"] == "3SHLDR0121503"


def test_change_order_asks_what_to_change_and_refuses_a_weekend():
    outcome, messages = run(cases.solve_change_order, MILA, order_number="2024121502")
    assert messages == [] and outcome.next_step == "collect_order_change"
    _, [message] = run(cases.solve_change_order, MILA, order_number="2024121502", delivery_day="2099-01-03")
    assert message["response"] == "utter_order_change_bad_day"


def test_invoice_copy_or_details():
    outcome, [copy] = run(cases.solve_invoice, MILA, text="kunt u de factuur nog een keer mailen?")
    assert copy["response"] == "utter_invoice_copy_sent" and copy["masked_email"] == "m***s@example.nl"
    _, [details] = run(cases.solve_invoice, THOMAS, text="hoeveel was mijn laatste factuur?")
    assert details["response"] == "utter_invoice_details_paid" and details["amount"] == "€ 179,99"
    _, [none] = run(cases.solve_invoice, LOTTE, text="factuur")
    assert none["response"] == "utter_no_invoice"


def test_failed_payment_and_none():
    outcome, [message] = run(cases.solve_failed_payment, THOMAS)
    assert message["response"] == "utter_payment_failed" and message["days"] == 7
    assert message["order_number"] == "2024121504"
    _, [none] = run(cases.solve_failed_payment, LOTTE)
    assert none["response"] == "utter_no_failed_payment"


def test_double_charge_refunded_or_a_person():
    outcome, [message] = run(cases.solve_double_charge, THOMAS)
    assert message["response"] == "utter_double_charge_refunded" and message["reference"].startswith("RC-")
    outcome, messages = run(cases.solve_double_charge, LOTTE)
    assert messages == [] and outcome.handoff_reason == "complexity"


def test_account_create_and_delete():
    _, [link] = run(cases.solve_create_account)
    assert link["response"] == "utter_signup_link" and "token=" in link["signup_url"]
    _, [exists] = run(cases.solve_create_account, KEVIN)
    assert exists["response"] == "utter_account_exists" and exists["masked_email"] == "k***g@example.nl"
    outcome, [deleted] = run(cases.solve_delete_account, KEVIN)
    assert deleted["response"] == "utter_account_deletion_recorded" and deleted["reference"].startswith("PV-")


def test_newsletter_unsubscribe_is_confirmed_once():
    _, [first] = run(cases.solve_newsletter_unsubscribe, SANNE)
    _, [second] = run(cases.solve_newsletter_unsubscribe, SANNE)
    assert (first["response"], second["response"]) == (
        "utter_newsletter_unsubscribed", "utter_newsletter_already_unsubscribed")


def test_feedback_kept_verbatim():
    words = "De bezorger was super vriendelijk 😊"
    outcome, [message] = run(cases.solve_feedback, KEVIN, text=words)
    assert message["response"] == "utter_feedback_thanks"
    kept = next(f for f in get_backend().feedback() if f.text == words)
    assert (kept.customer_id, kept.language) == (KEVIN, "nl")


def test_goodwill_offered_once_and_nothing_when_the_policy_gives_nothing():
    from sqlalchemy import select

    from actions.backend.sql import OutageRow

    with get_backend().transaction() as session:
        haarlem = session.scalars(select(OutageRow.id).where(OutageRow.seed_key == "haarlem-internet-resolved")).one()
        utrecht = session.scalars(select(OutageRow.id).where(OutageRow.seed_key == "utrecht-internet")).one()
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"customer_id": KEVIN}, sender_id="c-goodwill")
    asyncio.run(cases.offer_goodwill(dispatcher, tracker, "outage", str(haarlem)))
    asyncio.run(cases.offer_goodwill(dispatcher, tracker, "outage", str(haarlem)))
    assert responses(dispatcher) == ["utter_goodwill_bill_credit", "utter_goodwill_already_granted"]
    assert dispatcher.messages[0]["hours"] == 26
    purchase = next(p.id for p in get_backend().purchases(KEVIN) if p.category == "föhn")
    asyncio.run(cases.offer_goodwill(dispatcher, tracker, "defect", str(purchase)))
    assert dispatcher.messages[-1]["extra_en"] == "a PlayStation game of your choice"
    quiet = CollectingDispatcher()
    outcome = asyncio.run(cases.offer_goodwill(quiet, make_tracker(slots={"customer_id": LOTTE}), "outage", str(utrecht)))
    assert quiet.messages == [] and "outage_too_short" in outcome.result
