"""Solvers for the simple cases, one function per case, keyed by intent.

A solver answers the customer (responses only, never text in Python) and returns an
:class:`Outcome`: a short result for the agent's "what the bot tried" list, and a handoff
reason when a person must finish the job. Cases without a solver go to a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import Order, get_backend
from actions.common import format_date, language
from actions.identifiers import mask_email


@dataclass
class Outcome:
    """What a solver did."""

    result: str
    handoff_reason: Optional[str] = None
    events: List[EventType] = field(default_factory=list)


Solver = Callable[[CollectingDispatcher, Tracker], Outcome]


def solve_opening_hours(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Opening hours and contact facts."""
    dispatcher.utter_message(response="utter_opening_hours")
    return Outcome("answered")


def _pick_order(orders: List[Order], wanted: Optional[str]) -> Optional[Order]:
    if wanted:
        return next((o for o in orders if o.number == wanted), None)
    open_orders = [o for o in orders if o.status != "delivered"]
    return (open_orders or orders or [None])[0]


def solve_order_status(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Status of the order named, or of the customer's most recent open order."""
    orders = get_backend().orders(tracker.get_slot("customer_id"))
    wanted = tracker.get_slot("order_number")
    order = _pick_order(orders, wanted)
    if order is None:
        if wanted:
            # Also for an order of someone else: never reveal that it exists.
            dispatcher.utter_message(response="utter_order_not_found", order_number=wanted)
            return Outcome("order_not_found", events=[SlotSet("order_number", None)])
        dispatcher.utter_message(response="utter_no_orders")
        return Outcome("no_orders")
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
    reason = "complexity" if order.status == "lost" else None
    return Outcome(f"order {order.number} {order.status}", handoff_reason=reason,
                   events=[SlotSet("order_number", order.number)])


def solve_account_access(dispatcher: CollectingDispatcher, tracker: Tracker) -> Outcome:
    """Unlocks a locked account and sends a password-reset link to the registered address."""
    reset = get_backend().reset_password(tracker.get_slot("customer_id"))
    response = "utter_account_unlocked" if reset.unlocked else "utter_password_reset_sent"
    dispatcher.utter_message(response=response, masked_email=mask_email(reset.email))
    return Outcome("unlocked and reset link sent" if reset.unlocked else "reset link sent")


SOLVERS: Dict[str, Solver] = {
    "opening_hours": solve_opening_hours,
    "order_status": solve_order_status,
    "account_access": solve_account_access,
}
