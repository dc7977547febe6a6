"""Solvers for the simple cases, one function per case, keyed by intent.

A solver answers the customer (responses only, never text in Python) with the identity
already known, and returns an :class:`Outcome`: a short result for the agent's "what the bot
tried" list, a handoff reason when a person must finish the job, or a next step when the bot
needs one more answer (which contact detail to change).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import (
    BackendUnavailable,
    NotEligible,
    NotFound,
    Order,
    Purchase,
    get_async_backend,
)
from actions.common import format_date, language, money_for, outage_notice_once, product_word, service_name
from actions.contact_details import MAX_CONTACT_ATTEMPTS, infer_contact_field, normalise_contact_value
from actions.identifier_parsing import mask_email

ORDER_STATES = ("processing", "shipped", "late", "delivered", "lost", "cancelled")
# An order that still has to come: the one meant when the customer names none.
_CLOSED_ORDER_STATES = ("delivered", "cancelled")
REFUND_REFUSALS = ("too_late", "not_delivered", "amount_too_high", "already_refunded")


@dataclass
class Outcome:
    """What a solver did."""

    result: str
    handoff_reason: Optional[str] = None
    events: List[EventType] = field(default_factory=list)
    next_step: Optional[str] = None
    # What the customer was told (dates as ISO strings), kept for follow-up questions.
    facts: Dict[str, Any] = field(default_factory=dict)


Solver = Callable[[CollectingDispatcher, Tracker], Awaitable[Outcome]]


def _iso(day: Optional[dt.date]) -> Optional[str]:
    return day.isoformat() if day else None


def _customer_id(tracker: Tracker) -> str:
    return str(tracker.get_slot("customer_id"))


# -- facts -----------------------------------------------------------------------------------
async def solve_opening_hours(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Opening hours and contact facts."""
    dispatcher.utter_message(response="utter_opening_hours")
    return Outcome("answered", facts={"answered": True})


# -- orders ----------------------------------------------------------------------------------
def _pick_order(orders: List[Order], wanted: Optional[str]) -> Optional[Order]:
    if wanted:
        return next((o for o in orders if o.number == wanted), None)
    candidates = [o for o in orders if o.status not in _CLOSED_ORDER_STATES] or orders
    return candidates[0] if candidates else None


async def solve_order_status(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Status of the order named, or of the customer's most recent open order."""
    orders = await get_async_backend().orders(_customer_id(tracker))
    wanted = tracker.get_slot("order_number")
    order = _pick_order(orders, wanted)
    if order is None:
        if wanted:
            # Also for an order of someone else: never reveal that it exists.
            dispatcher.utter_message(response="utter_order_not_found", order_number=wanted)
            return Outcome("order_not_found", events=[SlotSet("order_number", None)])
        dispatcher.utter_message(response="utter_no_orders")
        return Outcome("no_orders")
    if order.status not in ORDER_STATES:
        raise BackendUnavailable(f"order {order.number} has unknown status {order.status!r}")
    lang = language(tracker)
    dispatcher.utter_message(
        response=f"utter_order_{order.status}",
        order_number=order.number,
        order_items=", ".join(order.items),
        carrier=order.carrier or "",
        tracking=order.tracking or "",
        expected_date=format_date(order.expected_on, lang),
        delivered_date=format_date(order.delivered_on, lang),
    )
    events: List[EventType] = [SlotSet("order_number", order.number)]
    if order.status == "late":
        due = dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(18, 0), dt.timezone.utc)
        await get_async_backend().add_promise(_customer_id(tracker), "redelivery",
                                              f"resend order {order.number} if not delivered",
                                              due, reference=order.number, conversation_id=tracker.sender_id)
    reason = "complexity" if order.status == "lost" else None
    facts = {"order_number": order.number, "status": order.status, "carrier": order.carrier,
             "tracking": order.tracking, "expected_on": _iso(order.expected_on), "delivered_on": _iso(order.delivered_on)}
    return Outcome(f"order {order.number} {order.status}", handoff_reason=reason, events=events, facts=facts)


# -- outages ---------------------------------------------------------------------------------
_SERVICE_WORDS = {
    "internet": re.compile(r"internet|wifi|wi-fi|glasvezel|fibre|fiber|modem|router|online|broadband", re.IGNORECASE),
    "tv": re.compile(r"\btv\b|televisie|television|zender|kanalen|channels|decoder|beeld", re.IGNORECASE),
    "mobile": re.compile(r"mobiel|mobile|\bgsm\b|[45]g\b|bellen|calls?\b|mobiele data|mobile data|sms|bereik|reception",
                         re.IGNORECASE),
}


def mentioned_service(*texts: str) -> Optional[str]:
    """The one service (internet, tv, mobile) the customer's words name, None for none or several."""
    named = {service for service, words in _SERVICE_WORDS.items() if any(words.search(t) for t in texts)}
    return named.pop() if len(named) == 1 else None


async def solve_report_outage(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """A known outage explains it; otherwise one restart, and a second report goes to a technician."""
    customer = await get_async_backend().get_customer(_customer_id(tracker))
    if customer is None:
        raise BackendUnavailable("verified customer not found")
    all_outages = await get_async_backend().outages_at(customer.postcode)
    named = mentioned_service(tracker.get_slot("problem_description") or "", (tracker.latest_message or {}).get("text") or "")
    # A TV outage does not explain an internet problem: only an outage of the service the
    # customer names (or any, when they name none) is the cause.
    outages = [o for o in all_outages if named is None or o.service == named]
    if outages:
        events = outage_notice_once(dispatcher, tracker, customer.postcode, outages)
        dispatcher.utter_message(response="utter_outage_confirmed")
        return Outcome(f"known outage {outages[0].id} at {customer.postcode}", events=events,
                       facts={"postcode": customer.postcode, "outage_id": outages[0].id})
    tried = [a for a in (tracker.get_slot("bot_attempts") or []) if a.startswith("report_outage:")]
    if tried:
        # The restart did not help: a person (technician) takes it from here.
        return Outcome("still down after restart", handoff_reason="complexity")
    facts: Dict[str, Any] = {"postcode": customer.postcode, "restart_advised": True}
    if all_outages:
        # The customer was just told about the outage nearby: "no outage at your address" would
        # contradict that. It is on another service, so it does not explain this one.
        other = all_outages[0].service
        facts["other_outage_service"] = other
        lang = language(tracker)
        dispatcher.utter_message(response="utter_other_service_outage_restart",
                                 outage_service=service_name(other, lang), service=service_name(named or "", lang))
    else:
        dispatcher.utter_message(response="utter_no_outage_restart")
    return Outcome("no known outage, restart advised", facts=facts)


# -- defective products ----------------------------------------------------------------------
def _pick_purchase(purchases: List[Purchase], wanted: Optional[str]) -> Optional[Purchase]:
    """The delivered purchase the customer named. None when they named none, even if only one
    product could be meant: a replacement is not shipped on a guess (a misread "het doet het niet"
    would send one), the customer picks the product first (one button when there is one)."""
    if not wanted:
        return None
    word = wanted.lower()
    delivered = [p for p in purchases if p.delivered_on and not p.returned]
    matches = [p for p in delivered if word in p.category.lower() or word in p.product.lower()
               or p.category.lower() in word]
    return matches[0] if matches else None


async def solve_defective_product(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """In warranty: a replacement ships now and the broken one is collected. Else a person."""
    backend = get_async_backend()
    purchases = await backend.purchases(_customer_id(tracker))
    wanted = tracker.get_slot("product")
    purchase = _pick_purchase(purchases, wanted)
    if purchase is None:
        candidates = [p for p in purchases if p.delivered_on and not p.returned]
        if not candidates:
            return Outcome("no delivered purchase found", handoff_reason="complexity")
        buttons = [{"title": p.product, "payload": f'/defective_product{{"product": "{p.category}"}}'} for p in candidates[:5]]
        response = "utter_product_not_found" if wanted else "utter_ask_which_product"
        named = product_word(wanted, language(tracker)) if wanted else ""
        dispatcher.utter_message(response=response, product=named, buttons=buttons)
        return Outcome(f"asked which product ({wanted or 'none named'})", events=[SlotSet("product", None)],
                       next_step="done")
    lang = language(tracker)
    try:
        shipment = await backend.ship_replacement(_customer_id(tracker), purchase.id)
    except NotEligible as refusal:
        if refusal.reason != "out_of_warranty":
            pass  # not delivered or already returned: the handoff message explains a person takes it
        elif purchase.warranty_until is None:
            dispatcher.utter_message(response="utter_no_warranty", product=purchase.product)
        else:
            dispatcher.utter_message(response="utter_out_of_warranty", product=purchase.product,
                                     purchase_date=format_date(purchase.purchased_on, lang),
                                     warranty_date=format_date(purchase.warranty_until, lang))
        return Outcome(f"{purchase.product}: {refusal.reason}", handoff_reason="complexity")
    dispatcher.utter_message(response="utter_replacement_sent", product=purchase.product, carrier=shipment.carrier,
                             expected_date=format_date(shipment.expected_on, lang), reference=shipment.reference)
    return Outcome(f"replacement {shipment.reference} for {purchase.product}", events=[SlotSet("product", purchase.category)],
                   facts={"reference": shipment.reference, "carrier": shipment.carrier, "product": purchase.product,
                          "purchase_id": purchase.id,
                          "expected_on": _iso(shipment.expected_on), "pickup_on": _iso(shipment.pickup_on)})


# -- refunds ---------------------------------------------------------------------------------
async def solve_request_refund(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Within policy: refunded now with a reference. Outside: a person, with the reason."""
    backend = get_async_backend()
    orders = await backend.orders(_customer_id(tracker))
    wanted = tracker.get_slot("order_number")
    if wanted:
        order = next((o for o in orders if o.number == wanted), None)
    else:
        order = next((o for o in orders if o.status == "delivered"), None)
    if order is None:
        if wanted:
            dispatcher.utter_message(response="utter_order_not_found", order_number=wanted)
        else:
            dispatcher.utter_message(response="utter_no_refundable_order")
        return Outcome("no refundable order", events=[SlotSet("order_number", None)], next_step="done")
    lang, money = language(tracker), await money_for(tracker)
    amount = money(order.total_cents)
    try:
        refund = await backend.refund(_customer_id(tracker), order.number)
    except NotEligible as refusal:
        policy = await backend.refund_policy()
        dispatcher.utter_message(response=f"utter_refund_{refusal.reason}", order_number=order.number,
                                 days=policy.days_after_delivery, amount=amount)
        return Outcome(f"refund {order.number}: {refusal.reason}", handoff_reason="complexity",
                       events=[SlotSet("order_number", order.number)])
    except NotFound:
        dispatcher.utter_message(response="utter_order_not_found", order_number=order.number)
        return Outcome("order_not_found", next_step="done")
    dispatcher.utter_message(response="utter_refund_done", order_number=order.number,
                             amount=money(refund.amount_cents), reference=refund.reference,
                             due_date=format_date(refund.due_on, lang), return_label=refund.return_label or "-")
    return Outcome(f"refund {refund.reference} for {order.number}", events=[SlotSet("order_number", order.number)],
                   facts={"reference": refund.reference, "order_number": order.number,
                          "amount_cents": refund.amount_cents, "due_on": _iso(refund.due_on)})


# -- account ---------------------------------------------------------------------------------
async def solve_account_access(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Unlocks a locked account and sends a password-reset link to the registered address."""
    reset = await get_async_backend().reset_password(_customer_id(tracker))
    response = "utter_account_unlocked" if reset.unlocked else "utter_password_reset_sent"
    dispatcher.utter_message(response=response, masked_email=mask_email(reset.email))
    return Outcome("unlocked and reset link sent" if reset.unlocked else "reset link sent",
                   facts={"masked_email": mask_email(reset.email), "unlocked": reset.unlocked})


# -- contact details -------------------------------------------------------------------------
_NEW_ADDRESS = re.compile(r"\b(?:naar|wordt|is nu|to|is now|new address is|nieuwe adres is)\s*:?\s+(.+)$", re.IGNORECASE)


def address_in_request(tracker: Tracker) -> Optional[str]:
    """The new address when the request itself gives it: "... mijn adres wijzigen naar Oudegracht 12, 3511 AB"."""
    latest = tracker.latest_message or {}
    if (latest.get("intent") or {}).get("name") != "change_contact_details":
        return None
    found = _NEW_ADDRESS.search(latest.get("text") or "")
    return found.group(1).strip(" .!") if found else None


async def solve_change_contact_details(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Changes e-mail, phone or address for the verified customer and confirms it back."""
    if int(tracker.get_slot("contact_attempts") or 0) >= MAX_CONTACT_ATTEMPTS:
        return Outcome("new details not understood twice", handoff_reason="second_miss")
    field_name = tracker.get_slot("contact_field") or infer_contact_field(tracker)
    customer = await get_async_backend().get_customer(_customer_id(tracker))
    country = customer.country if customer else "NL"
    value = normalise_contact_value(field_name, tracker.get_slot("new_contact_value"), country)
    if field_name == "address" and not value:
        value = normalise_contact_value("address", address_in_request(tracker))
    on_file = {"email": customer.email, "phone": customer.phone}.get(field_name or "") if customer else None
    if value and on_file and value.lower() == on_file.lower():
        # The detail on file, given to identify ("emily.clarke@…, SW1A 1AA"), is not the new one.
        value = None
    if not field_name or not value:
        # Ask only what is missing; what the customer already said is kept.
        return Outcome("asked for the new details", next_step="collect_contact",
                       events=[SlotSet("contact_field", field_name), SlotSet("new_contact_value", None)])
    try:
        customer = await get_async_backend().update_contact_details(_customer_id(tracker), field_name, value)
    except ValueError:
        return Outcome(f"{field_name} rejected by backend", handoff_reason="complexity")
    shown = {"email": customer.email, "phone": customer.phone}.get(field_name, value)
    dispatcher.utter_message(response=f"utter_contact_updated_{field_name}", value=shown)
    return Outcome(f"{field_name} changed", facts={"field": field_name, "value": shown},
                   events=[SlotSet("contact_field", None), SlotSet("new_contact_value", None),
                           SlotSet("contact_attempts", 0.0)])


SOLVERS: Dict[str, Solver] = {
    "opening_hours": solve_opening_hours,
    "order_status": solve_order_status,
    "report_outage": solve_report_outage,
    "defective_product": solve_defective_product,
    "request_refund": solve_request_refund,
    "account_access": solve_account_access,
    "change_contact_details": solve_change_contact_details,
}
