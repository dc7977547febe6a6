"""Goodwill within the operator's policy (actions/backend/policy.yml), on SQLite and PostgreSQL:
proportionate, recorded as a promise, one step up for a repeat contact, never twice per event,
and a person above the bot's limit."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from actions.backend.base import BackendUnavailable, NotEligible, NotFound
from actions.backend.policy import DEFAULT_POLICY_FILE, PolicyError, PolicyFile
from actions.backend.sql import GoodwillRow, OrderRow, OutageRow, PromiseRow
from tests.backend.test_sql_backend import AHMED, EMILY, LOTTE, PIETER, SANNE, count, purchase_id

UTC = dt.timezone.utc
KEVIN, KEVINS_LATE_ORDER = "52093817", "2024121510"


def outage_id(backend, seed_key: str) -> int:
    with backend.transaction() as session:
        return session.scalars(select(OutageRow.id).where(OutageRow.seed_key == seed_key)).one()


def use_policy(backend, tmp_path: Path, **changes) -> Path:
    """Points the backend at a copy of the shipped policy with ``changes`` ("a.b.c": value)."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    backend._policy_file = PolicyFile(path)
    return path


def next_bill(today: dt.date) -> dt.date:
    return dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)


# -- outages ------------------------------------------------------------------------------------


def test_long_outage_credit_on_the_next_bill_proportional_to_the_hours(backend):
    haarlem = outage_id(backend, "haarlem-internet-resolved")  # 30 h ago to 4 h ago
    gesture = backend.grant_goodwill(KEVIN, "outage", str(haarlem), conversation_id="c-1")
    today = dt.date.today()
    assert (gesture.status, gesture.kind, gesture.hours, gesture.step) == ("granted", "bill_credit", 26, 0)
    assert gesture.amount_cents == 26 * 50 and gesture.due_on == next_bill(today)
    assert gesture.event_key == f"outage:{haarlem}" and not gesture.already_granted
    assert re.fullmatch(rf"GW-{today:%Y%m%d}-\d{{4}}", gesture.reference)
    assert "€ 13,00" in gesture.description and "26 uur" in gesture.description
    [promise] = backend.promises(KEVIN)
    assert (promise.id, promise.kind, promise.reference, promise.description) == (
        gesture.promise_id, "goodwill", gesture.reference, gesture.description)
    assert promise.conversation_id == "c-1" and promise.due_at.date() >= gesture.due_on
    assert backend.goodwill(KEVIN) == [gesture]


def test_never_twice_for_the_same_event(backend):
    haarlem = str(outage_id(backend, "haarlem-internet-resolved"))
    first = backend.grant_goodwill(KEVIN, "outage", haarlem, conversation_id="c-1")
    again = backend.grant_goodwill(KEVIN, "outage", haarlem, repeat_contact=True, conversation_id="c-2")
    assert again.already_granted and again.reference == first.reference and again.amount_cents == first.amount_cents
    assert len(backend.promises(KEVIN)) == 1 and len(backend.goodwill(KEVIN)) == 1


def test_the_database_refuses_a_second_gesture_for_an_event(backend):
    first = backend.grant_goodwill(KEVIN, "late_order", KEVINS_LATE_ORDER)
    with pytest.raises(BackendUnavailable) as raised, backend.transaction() as session:
        session.add(GoodwillRow(
            reference="GW-19990101-0001", customer_id=KEVIN, reason="lost_order", event_key=first.event_key,
            kind="voucher", amount_cents=100, step=0, description="x", due_on=dt.date.today()))
    assert isinstance(raised.value.__cause__, IntegrityError)
    assert count(backend, GoodwillRow, customer_id=KEVIN) == 1


def test_a_short_outage_gets_no_credit(backend):
    with pytest.raises(NotEligible) as raised:
        backend.grant_goodwill(LOTTE, "outage", str(outage_id(backend, "utrecht-internet")))  # 1.5 h
    assert raised.value.reason == "outage_too_short"
    assert backend.promises(LOTTE) == [] and backend.goodwill(LOTTE) == []


def test_an_outage_elsewhere_is_not_found(backend):
    for event in (str(outage_id(backend, "haarlem-internet-resolved")), "999999", "not-a-number"):
        with pytest.raises(NotFound):
            backend.grant_goodwill(SANNE, "outage", event)
    assert count(backend, GoodwillRow) == 0


def test_a_repeat_contact_goes_one_step_up(backend, tmp_path):
    utrecht = str(outage_id(backend, "utrecht-internet"))
    with pytest.raises(NotEligible):  # first contact, 1.5 hours in: nothing yet
        backend.grant_goodwill(LOTTE, "outage", utrecht, conversation_id="c-1")
    # The operator lowers the threshold; the file is read again without a restart.
    use_policy(backend, tmp_path, **{"goodwill.outage.min_hours": 1})
    gesture = backend.grant_goodwill(LOTTE, "outage", utrecht, conversation_id="c-2")
    assert (gesture.step, gesture.hours, gesture.amount_cents) == (1, 1, 75)


def test_the_same_conversation_is_not_a_repeat(backend, tmp_path):
    utrecht = str(outage_id(backend, "utrecht-internet"))
    with pytest.raises(NotEligible):
        backend.grant_goodwill(LOTTE, "outage", utrecht, conversation_id="c-1")
    use_policy(backend, tmp_path, **{"goodwill.outage.min_hours": 1})
    assert backend.grant_goodwill(LOTTE, "outage", utrecht, conversation_id="c-1").step == 0


# -- orders ----------------------------------------------------------------------------------------


def test_late_order_gets_its_delivery_costs_back(backend):
    gesture = backend.grant_goodwill(KEVIN, "late_order", KEVINS_LATE_ORDER)
    today = dt.date.today()
    assert (gesture.kind, gesture.amount_cents, gesture.step) == ("delivery_costs", 495, 0)
    assert gesture.due_on == today + dt.timedelta(days=5) and gesture.voucher_code is None
    assert gesture.event_key == f"order:{KEVINS_LATE_ORDER}"


def test_late_order_after_an_earlier_promise_gets_a_voucher(backend):
    # The resend promised in an earlier conversation makes this contact a repeat.
    backend.add_promise(PIETER, "redelivery", "resend", dt.datetime.now(UTC), reference="2024120451",
                        conversation_id="c-earlier")
    gesture = backend.grant_goodwill(PIETER, "late_order", "2024120451", conversation_id="c-now")
    today = dt.date.today()
    assert (gesture.kind, gesture.amount_cents, gesture.step) == ("voucher", 1000, 1)
    assert re.fullmatch(r"HELDER-[0-9A-F]{8}", gesture.voucher_code)
    assert gesture.valid_until == today + dt.timedelta(days=90) and gesture.voucher_code in gesture.description


def test_repeat_contact_named_by_the_caller(backend):
    gesture = backend.grant_goodwill(KEVIN, "late_order", KEVINS_LATE_ORDER, repeat_contact=True)
    assert (gesture.kind, gesture.step) == ("voucher", 1)


def test_lost_order_gets_a_voucher_and_late_and_lost_are_one_event(backend):
    lost = backend.grant_goodwill(AHMED, "lost_order", "2024110032")
    assert (lost.kind, lost.amount_cents) == ("voucher", 1000)
    late = backend.grant_goodwill(PIETER, "late_order", "2024120451")
    with backend.transaction() as session:
        session.execute(update(OrderRow).where(OrderRow.number == "2024120451").values(status="lost"))
    assert backend.grant_goodwill(PIETER, "lost_order", "2024120451").reference == late.reference


@pytest.mark.parametrize("customer_id, reason, number, refusal", [
    (SANNE, "late_order", "2024097710", "not_late"),  # delivered on time
    (SANNE, "late_order", "2024118832", "not_late"),  # on its way, on time
    (PIETER, "lost_order", "2024120451", "not_lost"),  # late, not lost
])
def test_no_gesture_for_an_order_on_time(backend, customer_id, reason, number, refusal):
    with pytest.raises(NotEligible) as raised:
        backend.grant_goodwill(customer_id, reason, number)
    assert raised.value.reason == refusal and backend.promises(customer_id) == []


def test_someone_elses_order_is_not_found(backend):
    with pytest.raises(NotFound):
        backend.grant_goodwill(SANNE, "late_order", KEVINS_LATE_ORDER)


# -- defects -------------------------------------------------------------------------------------


def test_defect_extra_comes_from_the_customers_own_purchases(backend):
    dryer = purchase_id(backend, KEVIN, "föhn")
    shipment = backend.ship_replacement(KEVIN, dryer)
    gesture = backend.grant_goodwill(KEVIN, "defect", str(dryer))
    # Three PlayStation games on the loyalty card: a game, capped at the policy's small extra.
    assert (gesture.kind, gesture.extra_category, gesture.amount_cents) == ("extra_product", "playstation game", 1500)
    assert "PlayStation-game" in gesture.description and "Philips föhn BHD350" in gesture.description
    assert gesture.due_on == shipment.expected_on  # it comes with the replacement
    assert sorted(p.kind for p in backend.promises(KEVIN)) == ["goodwill", "replacement"]
    repeat = backend.grant_goodwill(KEVIN, "defect", str(dryer), repeat_contact=True)
    assert repeat.already_granted and repeat.amount_cents == 1500


def test_defect_extra_one_step_up(backend):
    gesture = backend.grant_goodwill(KEVIN, "defect", str(purchase_id(backend, KEVIN, "föhn")), repeat_contact=True)
    assert (gesture.step, gesture.amount_cents) == (1, 2500)


@pytest.mark.parametrize("customer_id, category, refusal", [
    (EMILY, "kettle", "out_of_warranty"),
    (PIETER, "headphones", "not_delivered"),
    (LOTTE, "router", "no_regular_purchases"),  # nothing they buy regularly: no generic coupon
])
def test_no_defect_extra(backend, customer_id, category, refusal):
    with pytest.raises(NotEligible) as raised:
        backend.grant_goodwill(customer_id, "defect", str(purchase_id(backend, customer_id, category)))
    assert raised.value.reason == refusal and backend.goodwill(customer_id) == []


def test_a_game_bought_once_is_not_regular(backend, tmp_path):
    use_policy(backend, tmp_path, **{"goodwill.defect.min_purchases": 4})
    with pytest.raises(NotEligible) as raised:
        backend.grant_goodwill(KEVIN, "defect", str(purchase_id(backend, KEVIN, "föhn")))
    assert raised.value.reason == "no_regular_purchases"


def test_someone_elses_purchase_is_not_found(backend):
    with pytest.raises(NotFound):
        backend.grant_goodwill(SANNE, "defect", str(purchase_id(backend, KEVIN, "föhn")))


# -- the bot's limit ------------------------------------------------------------------------------


def test_above_the_bots_limit_a_person_decides(backend, tmp_path):
    use_policy(backend, tmp_path, bot_limit_cents=1000)
    haarlem = str(outage_id(backend, "haarlem-internet-resolved"))
    proposal = backend.grant_goodwill(KEVIN, "outage", haarlem)
    assert (proposal.status, proposal.amount_cents, proposal.reference, proposal.promise_id) == (
        "needs_person", 1300, None, None)
    assert backend.goodwill(KEVIN) == [] and backend.promises(KEVIN) == []
    approved = backend.grant_goodwill(KEVIN, "outage", haarlem, approved_by="agent.anna")
    assert (approved.status, approved.approved_by, approved.amount_cents) == ("granted", "agent.anna", 1300)
    assert [p.reference for p in backend.promises(KEVIN)] == [approved.reference]


def test_a_voucher_above_the_limit_has_no_code(backend, tmp_path):
    use_policy(backend, tmp_path, bot_limit_cents=500)
    proposal = backend.grant_goodwill(AHMED, "lost_order", "2024110032")
    assert (proposal.status, proposal.kind, proposal.voucher_code) == ("needs_person", "voucher", None)


# -- the policy file -----------------------------------------------------------------------------


def test_a_broken_policy_grants_nothing(backend, tmp_path):
    path = use_policy(backend, tmp_path)
    path.write_text("version: 1\nbot_limit_cents: -5\n", encoding="utf-8")
    with pytest.raises(BackendUnavailable) as raised:
        backend.grant_goodwill(KEVIN, "late_order", KEVINS_LATE_ORDER)
    assert isinstance(raised.value.__cause__, PolicyError)
    assert count(backend, GoodwillRow) == 0 and count(backend, PromiseRow, customer_id=KEVIN) == 0


def test_unknown_reason(backend):
    with pytest.raises(ValueError):
        backend.grant_goodwill(KEVIN, "bad_weather", "1")


def test_two_requests_at_once_grant_one_gesture(backend):
    """Two conversations asking at the same moment: one gesture, the other sees it granted."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    haarlem = str(outage_id(backend, "haarlem-internet-resolved"))
    start = Barrier(2)

    def ask(conversation: str):
        start.wait()
        return backend.grant_goodwill(KEVIN, "outage", haarlem, conversation_id=conversation)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(ask, ["c-1", "c-2"]))
    assert len({r.reference for r in results}) == 1
    assert sorted(r.already_granted for r in results) == [False, True]
    assert count(backend, GoodwillRow, customer_id=KEVIN) == 1 and len(backend.promises(KEVIN)) == 1
