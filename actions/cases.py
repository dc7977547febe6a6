"""Every case's solver, keyed by intent: the seven first ones (:mod:`actions.solvers`) with the
goodwill they earn, and the cases of orders, invoices, payments, the account, the newsletter and
feedback.

Each solver answers with responses only and returns an :class:`Outcome` for the agent's "what the
bot tried" list, a handoff reason when a person must finish the job, and the facts the customer
was told for follow-ups.

:func:`offer_goodwill` is called after the bot dealt with an outage, a late or lost order or a
defect: the gesture the operator's policy gives is offered unasked, once per event (the backend
keeps it and its promise). ``request_compensation`` ("ik wil een vergoeding") finds the event
from what was just discussed, or from the customer's account.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import Invoice, NotEligible, NotFound, Order, get_async_backend
from actions.common import format_date, is_identified, language, money_for
from actions.identifier_parsing import mask_email
from actions.order_change import MAX_ORDER_CHANGE_ATTEMPTS, address_in_text, day_in_text
from actions.solvers import (
    SOLVERS,
    Outcome,
    Solver,
    _customer_id,
    _iso,
    solve_defective_product,
    solve_order_status,
    solve_report_outage,
    solve_request_refund,
)

CANCELLABLE = ("processing", "shipped", "late")
GOODWILL_REASONS = ("outage", "late_order", "lost_order", "defect")
# "Ik wil een vergoeding" looks this far back for an outage at the customer's address.
OUTAGE_LOOKBACK_DAYS = 7
# "Send me a copy" rather than "how much was it / when was it".
_COPY_WORDS = re.compile(r"kopie|copy|opnieuw (?:sturen|mailen)|nog een keer|(?:re)?send|mail (?:me|mij)|e-?mail",
                         re.IGNORECASE)


def _latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def _order(orders: List[Order], wanted: Optional[str], statuses: tuple, product: Optional[str] = None) -> Optional[Order]:
    """The order named, else the newest one in one of ``statuses`` (with the product the customer
    named, "de bezorgdag van mijn airfryer", when one has it)."""
    if wanted:
        return next((o for o in orders if o.number == wanted), None)
    candidates = [o for o in orders if o.status in statuses]
    if product:
        word = product.lower()
        candidates = [o for o in candidates if any(word in item.lower() for item in o.items)] or candidates
    return candidates[0] if candidates else None


def _no_order(dispatcher: CollectingDispatcher, wanted: Optional[str], none_response: str, result: str) -> Outcome:
    """The order named is not (one of) theirs, or they have none this case applies to."""
    if wanted:
        # Also for someone else's order: never reveal that it exists.
        dispatcher.utter_message(response="utter_order_not_found", order_number=wanted)
        return Outcome("order_not_found", events=[SlotSet("order_number", None)], next_step="done")
    dispatcher.utter_message(response=none_response)
    return Outcome(result, next_step="done")


# -- cancel -----------------------------------------------------------------------------------
async def solve_cancel_order(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Still processing: cancelled and refunded now. Shipped: the return started. Delivered: the
    refund case takes over. Lost: a person."""
    backend = get_async_backend()
    wanted = tracker.get_slot("order_number")
    order = _order(await backend.orders(_customer_id(tracker)), wanted, CANCELLABLE, tracker.get_slot("product"))
    if order is None:
        return _no_order(dispatcher, wanted, "utter_no_cancellable_order", "no cancellable order")
    lang = language(tracker)
    events: List[EventType] = [SlotSet("order_number", order.number)]
    try:
        cancellation = await backend.cancel_order(_customer_id(tracker), order.number,
                                                  conversation_id=tracker.sender_id)
    except NotEligible as refusal:
        if refusal.reason == "delivered":
            dispatcher.utter_message(response="utter_cancel_delivered", order_number=order.number)
            # A delivered order is returned for a refund, in the same turn.
            tracker.slots["order_number"] = order.number
            refund = await solve_request_refund(dispatcher, tracker)
            return Outcome(f"cancel {order.number}: delivered; {refund.result}", handoff_reason=refund.handoff_reason,
                           events=events + refund.events, facts=refund.facts)
        return Outcome(f"cancel {order.number}: {refusal.reason}", handoff_reason="complexity", events=events)
    except NotFound:
        dispatcher.utter_message(response="utter_order_not_found", order_number=order.number)
        return Outcome("order_not_found", events=[SlotSet("order_number", None)], next_step="done")
    if cancellation.order_return is not None:
        ret = cancellation.order_return
        money = await money_for(tracker)
        dispatcher.utter_message(response="utter_order_return_started", order_number=order.number,
                                 reference=ret.reference, return_label=ret.return_label,
                                 return_by=format_date(ret.return_by, lang), amount=money(ret.amount_cents))
        return Outcome(f"return {ret.reference} for {order.number}", events=events,
                       facts={"order_number": order.number, "reference": ret.reference,
                              "return_label": ret.return_label, "return_by": _iso(ret.return_by),
                              "amount_cents": ret.amount_cents})
    refund = cancellation.refund
    if refund is None:
        dispatcher.utter_message(response="utter_cancel_done_unpaid", order_number=order.number)
        return Outcome(f"order {order.number} cancelled (nothing paid)", events=events,
                       facts={"order_number": order.number, "cancelled": True})
    money = await money_for(tracker)
    dispatcher.utter_message(response="utter_cancel_done", order_number=order.number,
                             amount=money(refund.amount_cents), reference=refund.reference,
                             due_date=format_date(refund.due_on, lang))
    return Outcome(f"order {order.number} cancelled, refund {refund.reference}", events=events,
                   facts={"order_number": order.number, "reference": refund.reference,
                          "amount_cents": refund.amount_cents, "due_on": _iso(refund.due_on)})


# -- change -----------------------------------------------------------------------------------
def _wanted_day(tracker: Tracker) -> Optional[dt.date]:
    value = tracker.get_slot("delivery_day")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


async def solve_change_order(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A new delivery address and/or day for an order not yet shipped; refused, with the
    tracking, once it has."""
    if int(tracker.get_slot("order_change_attempts") or 0) >= MAX_ORDER_CHANGE_ATTEMPTS:
        return Outcome("new address or day not understood twice", handoff_reason="second_miss")
    backend = get_async_backend()
    wanted = tracker.get_slot("order_number")
    orders = await backend.orders(_customer_id(tracker))
    product = tracker.get_slot("product")
    order = _order(orders, wanted, ("processing",), product) or (
        None if wanted else _order(orders, None, ("shipped", "late"), product))
    if order is None:
        return _no_order(dispatcher, wanted, "utter_no_changeable_order", "no order to change")
    events: List[EventType] = [SlotSet("order_number", order.number)]
    lang = language(tracker)
    address, day = tracker.get_slot("delivery_address"), _wanted_day(tracker)
    if not address and not day:
        # "kan mijn bestelling zaterdag / naar Oudegracht 12, 3511 AB?": the request names it.
        for text in (_latest_text(tracker), tracker.get_slot("problem_description") or ""):
            address, day = address or address_in_text(text), day or day_in_text(text)
    if order.status == "processing" and not address and not day:
        return Outcome("asked for the new address or day", events=events, next_step="collect_order_change")
    try:
        if order.status != "processing":
            raise NotEligible("already_shipped" if order.status != "cancelled" else "cancelled")
        change = await backend.change_order(_customer_id(tracker), order.number, address=address or None,
                                            delivery_day=day)
    except NotEligible as refusal:
        dispatcher.utter_message(response="utter_order_change_too_late", order_number=order.number,
                                 carrier=order.carrier or "", tracking=order.tracking or "",
                                 expected_date=format_date(order.expected_on, lang))
        return Outcome(f"change {order.number}: {refusal.reason}", events=events, next_step="done",
                       facts={"order_number": order.number, "status": order.status, "tracking": order.tracking})
    except ValueError:
        response = "utter_order_change_bad_day" if day and not address else "utter_order_change_bad_address"
        dispatcher.utter_message(response=response, order_number=order.number,
                                 days=(await backend.service_policy()).delivery_days_ahead)
        return Outcome(f"change {order.number}: not usable", events=events + [SlotSet("delivery_day", None),
                                                                               SlotSet("delivery_address", None),
                                                                               SlotSet("order_change", None)],
                       next_step="collect_order_change")
    shown_address = ", ".join(part for part in (change.street, change.postcode, change.city) if part)
    dispatcher.utter_message(response="utter_order_changed", order_number=order.number, address=shown_address,
                             delivery_date=format_date(change.delivery_day or order.expected_on, lang))
    return Outcome(f"order {order.number} changed", events=events + [SlotSet("delivery_day", None),
                                                                      SlotSet("delivery_address", None),
                                                                      SlotSet("order_change", None),
                                                                      SlotSet("order_change_attempts", 0.0)],
                   facts={"order_number": order.number, "address": shown_address,
                          "delivery_day": _iso(change.delivery_day or order.expected_on)})


# -- invoices and payments -----------------------------------------------------------------------
def _pick_invoice(invoices: List[Invoice], tracker: Tracker) -> Optional[Invoice]:
    wanted = (tracker.get_slot("invoice_number") or "").upper()
    order_number = tracker.get_slot("order_number")
    if wanted:
        return next((i for i in invoices if i.number == wanted), None)
    if order_number:
        return next((i for i in invoices if i.order_number == order_number), None)
    return invoices[0] if invoices else None


async def solve_invoice(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A copy to the e-mail address on file when asked for one, else the amount and date."""
    backend = get_async_backend()
    invoice = _pick_invoice(await backend.invoices(_customer_id(tracker)), tracker)
    if invoice is None:
        dispatcher.utter_message(response="utter_no_invoice")
        return Outcome("no invoice found", next_step="done")
    lang, money = language(tracker), await money_for(tracker)
    details = {"invoice_number": invoice.number, "amount": money(invoice.amount_cents),
               "invoice_date": format_date(invoice.issued_on, lang), "due_date": format_date(invoice.due_on, lang)}
    facts = {"invoice_number": invoice.number, "amount_cents": invoice.amount_cents,
             "issued_on": _iso(invoice.issued_on)}
    if _COPY_WORDS.search(_latest_text(tracker)) or _COPY_WORDS.search(tracker.get_slot("problem_description") or ""):
        copy = await backend.send_invoice_copy(_customer_id(tracker), invoice.number)
        dispatcher.utter_message(response="utter_invoice_copy_sent", masked_email=copy.masked_email, **details)
        return Outcome(f"invoice {invoice.number} copy sent", facts={**facts, "masked_email": copy.masked_email})
    dispatcher.utter_message(response=f"utter_invoice_details_{invoice.status}", **details)
    return Outcome(f"invoice {invoice.number} details given", facts=facts)


async def solve_failed_payment(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """What to do now, and how long the order is kept for it."""
    try:
        failed = await get_async_backend().failed_payment(_customer_id(tracker), tracker.get_slot("order_number"))
    except NotFound:
        dispatcher.utter_message(response="utter_no_failed_payment")
        return Outcome("no failed payment found", next_step="done")
    lang, money = language(tracker), await money_for(tracker)
    dispatcher.utter_message(response="utter_payment_failed", order_number=failed.order_number,
                             amount=money(failed.amount_cents), days=failed.hold_days,
                             kept_until=format_date(failed.kept_until, lang))
    return Outcome(f"failed payment {failed.order_number}: kept until {failed.kept_until}",
                   events=[SlotSet("order_number", failed.order_number)],
                   facts={"order_number": failed.order_number, "kept_until": _iso(failed.kept_until)})


async def solve_double_charge(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A double charge found is refunded now; none found: a person looks into it."""
    try:
        refund = await get_async_backend().refund_duplicate_charge(
            _customer_id(tracker), tracker.get_slot("order_number"), conversation_id=tracker.sender_id)
    except NotFound:
        return Outcome("no double charge found", handoff_reason="complexity")
    lang, money = language(tracker), await money_for(tracker)
    dispatcher.utter_message(response="utter_double_charge_refunded", order_number=refund.order_number,
                             amount=money(refund.amount_cents), reference=refund.reference,
                             due_date=format_date(refund.due_on, lang))
    return Outcome(f"double charge refunded {refund.reference}", events=[SlotSet("order_number", refund.order_number)],
                   facts={"reference": refund.reference, "amount_cents": refund.amount_cents,
                          "due_on": _iso(refund.due_on)})


# -- account, newsletter, feedback ------------------------------------------------------------------
async def solve_create_account(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A sign-up link with a one-time token; a known customer already has an account."""
    if is_identified(tracker):
        customer = await get_async_backend().get_customer(_customer_id(tracker))
        dispatcher.utter_message(response="utter_account_exists",
                                 masked_email=mask_email(customer.email if customer else None))
        return Outcome("already has an account", next_step="done")
    backend = get_async_backend()
    link = await backend.signup_link()
    policy = await backend.service_policy()
    dispatcher.utter_message(response="utter_signup_link", signup_url=link.url, hours=policy.signup_token_hours)
    return Outcome("sign-up link sent", facts={"expires_at": link.expires_at.isoformat()})


async def solve_delete_account(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """The erasure request recorded, with the date it is done (a promise)."""
    request = await get_async_backend().request_account_deletion(_customer_id(tracker),
                                                                 conversation_id=tracker.sender_id)
    dispatcher.utter_message(response="utter_account_deletion_recorded", reference=request.reference,
                             due_date=format_date(request.due_on, language(tracker)))
    return Outcome(f"erasure request {request.reference}",
                   facts={"reference": request.reference, "due_on": _iso(request.due_on)})


_SUBSCRIBE = re.compile(r"\b(?:aanmelden|inschrijven|abonneren|subscribe|sign (?:me )?up|ontvangen|receive|get)\b",
                        re.IGNORECASE)
_UNSUBSCRIBE = re.compile(r"\b(?:af ?melden|uitschrijven|uit ?zetten|opzeggen|stop|stoppen|geen|niet meer|unsubscribe|"
                          r"opt.?out|remove|no more|don'?t want|do not want|off)\b|\baf\b", re.IGNORECASE)


async def solve_newsletter(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Off the newsletter now (what most ask), or on it when they ask to subscribe; confirmed."""
    text = _latest_text(tracker) or tracker.get_slot("problem_description") or ""
    if _SUBSCRIBE.search(text) and not _UNSUBSCRIBE.search(text):
        subscribed = await get_async_backend().subscribe_newsletter(_customer_id(tracker))
        dispatcher.utter_message(response="utter_newsletter_subscribed" if subscribed
                                 else "utter_newsletter_already_subscribed")
        return Outcome("subscribed" if subscribed else "was subscribed", facts={"subscribed": True})
    return await solve_newsletter_unsubscribe(dispatcher, tracker)


async def solve_newsletter_unsubscribe(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Off the newsletter now, confirmed; "already" when they were not on it."""
    result = await get_async_backend().unsubscribe_newsletter(_customer_id(tracker))
    response = "utter_newsletter_unsubscribed" if result.was_subscribed else "utter_newsletter_already_unsubscribed"
    dispatcher.utter_message(response=response)
    return Outcome("unsubscribed" if result.was_subscribed else "was not subscribed", facts={"unsubscribed": True})


# "Ik wil feedback geven" announces it; "de bezorger was top" is it.
_ANNOUNCES_FEEDBACK = re.compile(
    r"^\W*(?:(?:hallo|hoi|hi|hey|hello|goedemiddag|goedemorgen|goedenavond|dag)\W+)?"
    r"(?:ik\s+)?(?:wil|wou|zou|mag|kan|kun|waar kan|hoe kan|i'?d like to|i would like to|i want to|can i|could i|"
    r"may i|where can i|how do i|how can i)\b.{0,30}"
    r"\b(?:feedback|review|recensie|compliment(?:je)?|suggestie|tip|opmerking|iets kwijt|iets zeggen|reactie|"
    r"suggestion|comment|something)\b.{0,25}$",
    re.IGNORECASE)


def announces_feedback(text: str) -> bool:
    """True for a message that only says feedback is coming (then the bot asks for it)."""
    return bool(_ANNOUNCES_FEEDBACK.match(text or "")) and len(text.split()) <= 12


async def solve_feedback(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Kept verbatim for the team, with the customer when known; asked for when only announced."""
    text = tracker.get_slot("feedback_text") or _latest_text(tracker)
    if not text.strip() or text.startswith("/"):
        return Outcome("no feedback text", next_step="done")
    if not tracker.get_slot("feedback_text") and announces_feedback(text):
        return Outcome("asked for the feedback", next_step="collect_feedback")
    await get_async_backend().add_feedback(text, language(tracker), tracker.get_latest_input_channel() or "unknown",
                                           customer_id=_customer_id(tracker) if is_identified(tracker) else None,
                                           conversation_id=tracker.sender_id)
    dispatcher.utter_message(response="utter_feedback_thanks")
    return Outcome("feedback kept", events=[SlotSet("feedback_text", None)])


# -- goodwill ----------------------------------------------------------------------------------------
async def offer_goodwill(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, event_id: str,
                   repeat_contact: bool = False) -> Outcome:
    """The gesture the policy gives for this event, offered unasked (once per event).

    Nothing is said when the policy gives nothing; above the bot's limit a person decides.
    """
    if reason not in GOODWILL_REASONS:
        raise ValueError(f"unknown goodwill reason {reason!r}")
    backend = get_async_backend()
    try:
        gesture = await backend.grant_goodwill(_customer_id(tracker), reason, str(event_id),
                                               repeat_contact=repeat_contact, conversation_id=tracker.sender_id)
    except (NotEligible, NotFound) as refusal:
        return Outcome(f"no goodwill for {reason} {event_id}: {getattr(refusal, 'reason', 'not found')}")
    lang = language(tracker)
    if gesture.status == "needs_person":
        dispatcher.utter_message(response="utter_goodwill_needs_person")
        return Outcome(f"goodwill {gesture.kind} {gesture.amount_cents} above the bot's limit",
                       handoff_reason="complexity", facts={"goodwill_proposed_cents": gesture.amount_cents})
    money = await money_for(tracker)
    args: Dict[str, object] = {
        "amount": money(gesture.amount_cents), "due_date": format_date(gesture.due_on, lang),
        "reference": gesture.reference or "", "voucher_code": gesture.voucher_code or "",
        "valid_until": format_date(gesture.valid_until, lang), "hours": gesture.hours or 0,
    }
    if gesture.extra_category:
        offer = (await backend.service_policy()).defect_extras.get(gesture.extra_category)
        args.update(extra_nl=offer.nl if offer else gesture.description, extra_en=offer.en if offer else gesture.description)
    response = "utter_goodwill_already_granted" if gesture.already_granted else f"utter_goodwill_{gesture.kind}"
    dispatcher.utter_message(response=response, **args)
    # A repeat contact about the same problem (the gesture is a step up the ladder): a person takes
    # it from here, with the history, so the cause gets looked at and not only the symptom.
    repeat = gesture.step > 0 and not gesture.already_granted
    return Outcome(f"goodwill {gesture.reference} {gesture.kind}" + (" (granted before)" if gesture.already_granted else "")
                   + (f" (contact {gesture.step + 1} about this: to a person)" if repeat else ""),
                   handoff_reason="complexity" if repeat else None,
                   facts={"goodwill_reference": gesture.reference, "goodwill_kind": gesture.kind,
                          "goodwill_due_on": _iso(gesture.due_on)})


def _with_goodwill(outcome: Outcome, goodwill: Optional[Outcome]) -> Outcome:
    """The solver's outcome with the gesture offered after it (its line on the agent's card)."""
    if goodwill is None:
        return outcome
    return Outcome(f"{outcome.result}; {goodwill.result}", handoff_reason=outcome.handoff_reason or goodwill.handoff_reason,
                   events=outcome.events + goodwill.events, next_step=outcome.next_step,
                   facts={**outcome.facts, **goodwill.facts})


async def solve_report_outage_with_goodwill(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A known outage explained, and a credit offered when it lasts longer than the policy's hours."""
    outcome = await solve_report_outage(dispatcher, tracker)
    outage = outcome.facts.get("outage_id")
    return _with_goodwill(outcome, await offer_goodwill(dispatcher, tracker, "outage", str(outage)) if outage else None)


async def solve_order_status_with_goodwill(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """The order's status, and a gesture for a late or lost one."""
    outcome = await solve_order_status(dispatcher, tracker)
    reason = {"late": "late_order", "lost": "lost_order"}.get(outcome.facts.get("status") or "")
    number = outcome.facts.get("order_number")
    goodwill = await offer_goodwill(dispatcher, tracker, reason, number) if reason and number else None
    return _with_goodwill(outcome, goodwill)


async def solve_defective_product_with_goodwill(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """The replacement, and an extra from the customer's own purchases when they buy it regularly."""
    outcome = await solve_defective_product(dispatcher, tracker)
    purchase = outcome.facts.get("purchase_id")
    goodwill = await offer_goodwill(dispatcher, tracker, "defect", str(purchase)) if purchase else None
    return _with_goodwill(outcome, goodwill)


_TWICE = re.compile(r"twee ?keer|2 ?keer|2x|dubbel|twice|two times|double|duplicate|2 times", re.IGNORECASE)


def _says_charged_twice(tracker: Tracker) -> bool:
    return any(_TWICE.search(text) for text in (_latest_text(tracker), tracker.get_slot("problem_description") or ""))


def bot_tries_first(tracker: Tracker) -> bool:
    """A complex case the bot may still solve itself: a double charge ("twee keer afgeschreven")."""
    return tracker.get_slot("problem_intent") == "billing_dispute" and _says_charged_twice(tracker)


async def solve_billing_dispute(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Charged twice and the backend sees it: refunded now. Any other billing dispute: a person."""
    if _says_charged_twice(tracker):
        return await solve_double_charge(dispatcher, tracker)
    return Outcome("billing dispute for a person", handoff_reason="complexity")


async def _event_to_compensate(tracker: Tracker) -> Optional[tuple]:
    """(reason, event id) of what was just discussed, else of the customer's outage or late order."""
    facts = tracker.get_slot("topic_facts") or {}
    topic = tracker.get_slot("last_topic")
    if topic == "report_outage" and facts.get("outage_id"):
        return "outage", str(facts["outage_id"])
    if topic in ("order_status", "cancel_order", "change_order") and facts.get("status") in ("late", "lost"):
        return ("late_order" if facts["status"] == "late" else "lost_order"), str(facts["order_number"])
    if topic == "defective_product" and facts.get("purchase_id"):
        return "defect", str(facts["purchase_id"])
    backend = get_async_backend()
    customer = await backend.get_customer(_customer_id(tracker))
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=OUTAGE_LOOKBACK_DAYS)
    outages = await backend.outages_since(customer.postcode, since) if customer else []
    if outages:
        # The longest one is the one they mean.
        return "outage", str(max(outages, key=_outage_hours).id)
    orders = await backend.orders(_customer_id(tracker))
    order = next((o for o in orders if o.status in ("late", "lost")), None)
    if order is not None:
        return ("late_order" if order.status == "late" else "lost_order"), order.number
    return None


def _outage_hours(outage) -> float:
    end = outage.resolved_at or dt.datetime.now(dt.timezone.utc)
    return (end - outage.started_at).total_seconds() / 3600 if outage.started_at else 0.0


async def solve_request_compensation(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """"Ik wil een vergoeding": the policy's gesture for the event, once; or why there is none."""
    event = await _event_to_compensate(tracker)
    if event is None:
        dispatcher.utter_message(response="utter_no_goodwill")
        return Outcome("no event to compensate found", next_step="done")
    reason, event_id = event
    outcome = await offer_goodwill(dispatcher, tracker, reason, event_id)
    if not outcome.facts and not outcome.handoff_reason:
        # The policy gives nothing for it (an outage shorter than the policy's hours).
        dispatcher.utter_message(response="utter_goodwill_not_eligible")
        return Outcome(outcome.result, next_step="done")
    return outcome


# Every case the bot solves, by intent (complaint and privacy_request always go to a person).
CASE_SOLVERS: Dict[str, Solver] = {
    **SOLVERS,
    "report_outage": solve_report_outage_with_goodwill,
    "order_status": solve_order_status_with_goodwill,
    "defective_product": solve_defective_product_with_goodwill,
    "billing_dispute": solve_billing_dispute,
    "cancel_order": solve_cancel_order,
    "change_order": solve_change_order,
    "invoice": solve_invoice,
    "failed_payment": solve_failed_payment,
    "create_account": solve_create_account,
    "delete_account": solve_delete_account,
    "newsletter": solve_newsletter,
    "feedback": solve_feedback,
    "request_compensation": solve_request_compensation,
}
