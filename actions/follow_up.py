"""Follow-ups about what was just handled: "how long?", "can it be faster?", "it still doesn't work".

The topic is the case in hand (``problem_intent``) or the one handled last (``last_topic``, with
``topic_facts``: what the customer was told). Answers come from the backend where it knows more
than the facts (an outage's fix time, an order's status). A repeated "it still doesn't work" gets
the next step (a new link, a person), never the same answer again. A follow-up without a topic
asks once what it is about; the second goes to a person.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import BackendUnavailable, get_async_backend
from actions.common import (
    FOLLOW_UP_INTENTS,
    acknowledge_once,
    disclose_once,
    format_date,
    format_fix_time,
    is_identified,
    language,
    last_response,
    latest_intent,
    money_for,
    record_attempt,
    remember_topic,
    service_name,
)
from actions.frustration import frustrated
from actions.identifier_parsing import mask_email

logger = logging.getLogger(__name__)


@dataclass
class Answer:
    """What a follow-up did: a short result for the agent, or a handoff."""

    result: str
    handoff_reason: Optional[str] = None
    events: List[EventType] = field(default_factory=list)


def _date(value: Any) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _said_before(tracker: Tracker, topic: str, what: str) -> bool:
    return f"{topic}:follow_up_{what}" in (tracker.get_slot("bot_attempts") or [])


# -- one function per topic ------------------------------------------------------------------
async def outage(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """The outage at the customer's address: its fix time from the backend, now."""
    customer = await get_async_backend().get_customer(str(tracker.get_slot("customer_id")))
    if customer is None:
        raise BackendUnavailable("verified customer not found")
    outages = await get_async_backend().outages_at(customer.postcode)
    lang = language(tracker)
    other_service = [o for o in outages if o.service == facts.get("other_outage_service")]
    if facts.get("restart_advised") and not facts.get("outage_id"):
        outages = []  # the outage there is of another service than the customer's problem
    if outages:
        fix_time = format_fix_time(outages[0].expected_fix_at, lang)
        if kind == "not_solved":
            if _said_before(tracker, "report_outage", "not_solved"):
                return Answer("still down, second time", handoff_reason="complexity")
            dispatcher.utter_message(response="utter_follow_up_outage_not_solved", fix_time=fix_time)
        elif kind == "ask_faster":
            dispatcher.utter_message(response="utter_follow_up_outage_faster", fix_time=fix_time)
        else:
            dispatcher.utter_message(response="utter_follow_up_report_outage", fix_time=fix_time)
        return Answer(f"outage {outages[0].id}: fix {fix_time}")
    # No outage (any more): the restart is the next step, then a technician (a person).
    if kind == "not_solved":
        if facts.get("restart_advised") or _said_before(tracker, "report_outage", "not_solved"):
            return Answer("still down after restart", handoff_reason="complexity")
        dispatcher.utter_message(response="utter_no_outage_restart")
        return Answer("no outage now, restart advised",
                      events=remember_topic("report_outage", {**facts, "restart_advised": True}))
    if other_service:
        # "When will it be fixed?" about the outage nearby, which is not the customer's problem.
        dispatcher.utter_message(response="utter_follow_up_other_service_outage",
                                 outage_service=service_name(other_service[0].service, lang),
                                 fix_time=format_fix_time(other_service[0].expected_fix_at, lang))
        return Answer(f"outage {other_service[0].id} is of another service")
    dispatcher.utter_message(response="utter_follow_up_no_outage")
    return Answer("no outage known")


async def order(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """The order just looked up, as the backend knows it now."""
    number = facts.get("order_number") or tracker.get_slot("order_number")
    orders = await get_async_backend().orders(str(tracker.get_slot("customer_id")))
    found = next((o for o in orders if o.number == number), None)
    if found is None:
        return Answer("order no longer found", handoff_reason="complexity")
    lang = language(tracker)
    values = dict(order_number=found.number, carrier=found.carrier or "", tracking=found.tracking or "",
                  expected_date=format_date(found.expected_on, lang),
                  delivered_date=format_date(found.delivered_on, lang))
    if found.status == "delivered":
        if kind == "not_solved":
            # Delivered on paper, not at the door: a person looks into it (carrier claim).
            return Answer(f"order {found.number} delivered but not received", handoff_reason="complexity")
        dispatcher.utter_message(response="utter_follow_up_order_delivered", **values)
        return Answer(f"order {found.number} delivered")
    if found.status in ("lost",):
        return Answer(f"order {found.number} lost", handoff_reason="complexity")
    if found.status == "cancelled":
        # When, faster, not received: it was cancelled and will not come.
        dispatcher.utter_message(response="utter_follow_up_order_cancelled", **values)
        return Answer(f"order {found.number} cancelled")
    due = found.expected_on is not None and found.expected_on >= dt.date.today()
    if kind == "not_solved":
        if not due or found.status == "late" or _said_before(tracker, "order_status", "not_solved"):
            return Answer(f"order {found.number} still not received", handoff_reason="complexity")
        dispatcher.utter_message(response="utter_follow_up_order_not_due", **values)
        return Answer(f"order {found.number} not due yet")
    if found.status == "processing":
        dispatcher.utter_message(response="utter_follow_up_order_processing", **values)
    elif found.status == "late":
        # Past its date: say so plainly, with the resend already promised.
        dispatcher.utter_message(response="utter_follow_up_order_late", **values)
    elif kind == "ask_faster":
        dispatcher.utter_message(response="utter_follow_up_order_faster", **values)
    else:
        dispatcher.utter_message(response="utter_follow_up_order_status", **values)
    return Answer(f"order {found.number} {found.status}")


async def replacement(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """The replacement just sent."""
    if not facts.get("reference"):
        return Answer("no replacement to follow up", handoff_reason="complexity")
    if kind == "not_solved":
        # The new one does not work either: nothing more the bot can do well.
        return Answer(f"replacement {facts['reference']}: still a problem", handoff_reason="complexity")
    lang = language(tracker)
    dispatcher.utter_message(response="utter_follow_up_defective_product", reference=facts["reference"],
                             carrier=facts.get("carrier") or "", product=facts.get("product") or "",
                             expected_date=format_date(_date(facts.get("expected_on")), lang),
                             pickup_date=format_date(_date(facts.get("pickup_on")), lang))
    return Answer(f"replacement {facts['reference']} restated")


async def refund(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """The refund just granted: when the money arrives."""
    if not facts.get("reference"):
        return Answer("no refund to follow up", handoff_reason="complexity")
    lang, money = language(tracker), await money_for(tracker)
    if facts.get("return_label") and not facts.get("due_on"):
        # A shipped order cancelled: the money comes once the parcel is back, there is no date yet.
        dispatcher.utter_message(response="utter_follow_up_return_in_progress", reference=facts["reference"],
                                 amount=money(int(facts.get("amount_cents") or 0)),
                                 return_label=facts["return_label"],
                                 return_by=format_date(_date(facts.get("return_by")), lang))
        return Answer(f"return {facts['reference']} restated")
    due_on = _date(facts.get("due_on"))
    values = dict(reference=facts["reference"], amount=money(int(facts.get("amount_cents") or 0)),
                  due_date=format_date(due_on, lang), order_number=facts.get("order_number") or "")
    if kind == "not_solved":
        overdue = due_on is None or due_on < dt.date.today()
        if overdue or _said_before(tracker, "request_refund", "not_solved"):
            return Answer(f"refund {facts['reference']} not received", handoff_reason="complexity")
        dispatcher.utter_message(response="utter_follow_up_refund_not_due", **values)
        return Answer(f"refund {facts['reference']} not due yet")
    dispatcher.utter_message(response="utter_follow_up_request_refund", **values)
    return Answer(f"refund {facts['reference']} restated")


async def account(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """The reset link: where it went; no mail the first time → a new link, the second → a person."""
    if kind == "not_solved":
        if _said_before(tracker, "account_access", "not_solved"):
            return Answer("reset link still not working", handoff_reason="complexity")
        reset = await get_async_backend().reset_password(str(tracker.get_slot("customer_id")))
        dispatcher.utter_message(response="utter_follow_up_account_resent", masked_email=mask_email(reset.email))
        return Answer("new reset link sent")
    dispatcher.utter_message(response="utter_follow_up_account_access", masked_email=facts.get("masked_email") or "")
    return Answer("reset link restated")


async def contact(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """A changed contact detail takes effect at once."""
    if kind == "not_solved":
        return Answer(f"{facts.get('field')} change not right", handoff_reason="complexity")
    dispatcher.utter_message(response="utter_follow_up_change_contact_details", value=facts.get("value") or "")
    return Answer("change restated")


async def opening_hours(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, facts: Dict[str, Any]) -> Answer:
    """A question after the opening hours is about the opening hours."""
    dispatcher.utter_message(response="utter_opening_hours")
    return Answer("opening hours restated")


Handler = Callable[[CollectingDispatcher, Tracker, str, Dict[str, Any]], Awaitable[Answer]]
HANDLERS: Dict[str, Handler] = {
    "report_outage": outage,
    "order_status": order,
    "defective_product": replacement,
    "request_refund": refund,
    "account_access": account,
    "change_contact_details": contact,
    "opening_hours": opening_hours,
    # Money the bot just refunded (a cancelled order, a double charge): when it arrives.
    "cancel_order": refund,
    "billing_dispute": refund,
    # An order whose address or day just changed: where it is now.
    "change_order": order,
}


# A case told again after it was handled is a follow-up: the next step, not the same answer.
REPEAT_MEANS = {"report_outage": "not_solved", "defective_product": "not_solved", "account_access": "not_solved",
                "order_status": "ask_when", "request_refund": "ask_when", "opening_hours": "ask_when"}
# Facts anyone may ask; everything else is about the customer's own account.
TOPICS_WITHOUT_IDENTITY = ("opening_hours",)


def repeated_case(tracker: Tracker, case: str) -> Optional[str]:
    """The follow-up a repeated case stands for, when the bot already handled it this session."""
    if case != tracker.get_slot("last_topic") or case not in REPEAT_MEANS:
        return None
    if case not in TOPICS_WITHOUT_IDENTITY and not is_identified(tracker):
        return None
    attempts = [str(a) for a in tracker.get_slot("bot_attempts") or []]
    if not any(a.startswith(f"{case}:") for a in attempts):
        return None
    facts = tracker.get_slot("topic_facts") or {}
    for entity in (tracker.latest_message or {}).get("entities") or []:
        named = {"order_number": facts.get("order_number"), "product": facts.get("product")}.get(entity.get("entity"))
        if entity.get("entity") in ("order_number", "product") and named is not None \
                and str(entity.get("value")).lower() not in str(named).lower():
            return None  # another order or product: a new case, not the same one again
    if case != "opening_hours" and any(a.startswith(f"{case}:follow_up_") for a in attempts):
        # Told a third time, after the answer and a follow-up: restating it again is a loop.
        return "not_solved"
    return REPEAT_MEANS[case]


def can_answer_about(tracker: Tracker, topic: Optional[str]) -> bool:
    """True when a follow-up about ``topic`` can be answered: there is a handler for it, and the
    customer is identified where the topic needs it."""
    return topic in HANDLERS and (topic in TOPICS_WITHOUT_IDENTITY or is_identified(tracker))


# The outage named in a follow-up ("en hoe lang duurt die storing nog?") is the topic, even when
# something else was handled after the bot told about it.
OUTAGE_WORDS = re.compile(r"\b(storing|storingen|onderbreking|outage|outages|disruption)\b", re.IGNORECASE)


def names_the_outage(tracker: Tracker) -> bool:
    """True when the latest message names the outage the bot told the customer about."""
    return bool(tracker.get_slot("outage_notified")) \
        and bool(OUTAGE_WORDS.search((tracker.latest_message or {}).get("text") or ""))


# A question of fact that points back at what was just handled is about that, not the general
# article: "en wie bezorgt het?" right after an order's status, "hoe lang duurt de levering?" right
# after a replacement was sent (read as the delivery article) want that order's carrier and date.
# Pointing back: a pronoun, a demonstrative or a definite article ("het" only as a pronoun, at the
# end of a clause or before an adverb: "het bezorgen" is generic); a question about prices, the
# options or what usually happens is about the service in general ("hoeveel kost het bezorgen?").
ARTICLE_TOPICS = {"faq/delivery_options": ("order_status", "change_order", "defective_product")}
POINTS_BACK = re.compile(
    r"\b(?:hij|ie|hem|'m|die|dat|deze|dit|de|it|its|it's|that|this|the|they|them|he|she)\b"
    r"|\bhet\b(?=\s*(?:[?.!,;]|$|al\b|nog\b|dan\b|ook\b|eigenlijk\b|precies\b|morgen\b|vandaag\b|nu\b))",
    re.IGNORECASE,
)
IN_GENERAL = re.compile(
    r"\b(?:kost|kostte|gratis|betalen|price|prices|cost|costs|charge|fee|free|pay|how much is|how much does|"
    r"options|methods|ways|altijd|meestal|normaal|normaliter|gewoonlijk|usually|normally|always|generally|"
    r"typically|buitenland|abroad|belgi\w*|nederland|netherlands|holland|uk)\b"
    r"|\b\w*(?:kosten|prijs|prijzen|tarief|tarieven|opties|mogelijkheden|manieren)\b",  # also in compounds
    re.IGNORECASE,
)


def detail_in_hand(tracker: Tracker, article: Optional[str]) -> Optional[str]:
    """The topic handled last when the latest message, a question of fact about ``article``, points
    back at it and it can be answered; None otherwise (the article answers it)."""
    topic = tracker.get_slot("last_topic")
    if topic not in ARTICLE_TOPICS.get(article or "", ()) or not can_answer_about(tracker, topic):
        return None
    text = (tracker.latest_message or {}).get("text") or ""
    return topic if POINTS_BACK.search(text) and not IN_GENERAL.search(text) else None


# A question the classifier could not place but ranks as a follow-up next, at least this sure,
# is a follow-up when a topic is in hand: "when does the new one arrive?" right after a replacement
# was sent (out of scope 0.59, ask_when 0.35) is about the replacement, not a request we don't do.
MIN_FOLLOW_UP_IN_DOUBT = 0.3
NOT_A_READING = ("out_of_scope", "nlu_fallback")


def follow_up_in_doubt(tracker: Tracker) -> Optional[Tuple[str, str]]:
    """(topic, kind) when the latest message, read as out of scope, is next most likely a
    follow-up about the topic handled last; None otherwise (no topic, gibberish, another reading)."""
    message = tracker.latest_message or {}
    topic = tracker.get_slot("last_topic")
    if message.get("nonsense") or not can_answer_about(tracker, topic):
        return None
    readings = [item for item in message.get("intent_ranking") or [] if item.get("name") not in NOT_A_READING]
    if readings and readings[0].get("name") in FOLLOW_UP_INTENTS \
            and float(readings[0].get("confidence") or 0.0) >= MIN_FOLLOW_UP_IN_DOUBT:
        return topic, str(readings[0]["name"])
    return None


async def answer_follow_up(
    dispatcher: CollectingDispatcher, tracker: Tracker, topic: str, kind: str
) -> List[EventType]:
    """Answers a follow-up of ``kind`` about ``topic``; the events end with ``next_step``."""
    events: List[EventType] = []
    facts = dict(tracker.get_slot("topic_facts") or {})
    if topic != "report_outage" and names_the_outage(tracker):
        # "and how long will the outage last?" after a replacement: the outage told earlier.
        topic, facts = "report_outage", {"postcode": tracker.get_slot("postcode")}
        events += remember_topic(topic, facts)
    fed_up = frustrated((tracker.latest_message or {}).get("text") or "")
    if kind == "not_solved" and fed_up:
        # Still not solved, and fed up: no next thing to try, a person takes it from here.
        return events + [record_attempt(tracker, f"{topic}:follow_up_not_solved (customer fed up)"),
                         SlotSet("problem_intent", topic), SlotSet("handoff_reason", "frustration"),
                         SlotSet("next_step", "handoff")]
    handler = HANDLERS[topic]
    try:
        answer = await handler(dispatcher, tracker, kind, facts)
    except BackendUnavailable as error:
        logger.warning("backend unavailable for a follow-up on %s: %s", topic, error)
        dispatcher.utter_message(response="utter_backend_unavailable")
        return events + [record_attempt(tracker, f"{topic}:backend_failure"),
                         SlotSet("handoff_reason", "backend_failure"), SlotSet("next_step", "handoff")]
    attempts = list(tracker.get_slot("bot_attempts") or [])
    attempts += [f"{topic}:follow_up_{kind}", f"{topic}:{answer.result}"]
    events += [SlotSet("bot_attempts", attempts), *answer.events]
    if answer.handoff_reason:
        # The agent's card shows the case as the topic, not "ask_when"; a customer who says it
        # still does not work and is fed up is handed over for that reason.
        reason = "frustration" if fed_up else answer.handoff_reason
        return events + [SlotSet("problem_intent", topic), SlotSet("handoff_reason", reason),
                         SlotSet("next_step", "handoff")]
    return events + [SlotSet("next_step", "done")]


class ActionFollowUp(Action):
    """Answers a follow-up about the topic in hand, from the backend."""

    def name(self) -> Text:
        return "action_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = disclose_once(dispatcher, tracker)
        kind = latest_intent(tracker) or "ask_when"
        topic = tracker.get_slot("last_topic") or tracker.get_slot("problem_intent")
        if not can_answer_about(tracker, topic):
            if tracker.get_slot("follow_up_asked"):
                return events + [SlotSet("handoff_reason", "second_miss"), SlotSet("next_step", "handoff")]
            dispatcher.utter_message(response="utter_follow_up_no_topic")
            return events + [SlotSet("follow_up_asked", True), SlotSet("next_step", "done")]
        return events + await answer_follow_up(dispatcher, tracker, topic, kind)


# What the bot says that a "no" answers with "nothing else": "anything else?", "fine, just say if
# there is anything else", "was something unclear?".
ANYTHING_ELSE_QUESTIONS = ("utter_anything_else", "utter_acknowledge", "utter_anything_unclear")


async def nothing_else(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """A "no" with nothing asked, or to "anything else?": the acknowledgement or the goodbye.

    Unless the "no" is dissatisfaction with what was just handled ("that's not acceptable", "dat
    is niet acceptabel"): then it did not help, and with the customer fed up a person takes it
    from here. An angry customer never gets a cheerful goodbye.
    """
    topic = tracker.get_slot("last_topic")
    if topic in HANDLERS and frustrated((tracker.latest_message or {}).get("text") or ""):
        return await answer_follow_up(dispatcher, tracker, topic, "not_solved")
    if last_response(tracker) in ANYTHING_ELSE_QUESTIONS:
        dispatcher.utter_message(response="utter_goodbye")
    else:
        acknowledge_once(dispatcher, tracker)
    return [SlotSet("next_step", "done")]


class ActionNothingElse(Action):
    """Runs on a "no" (see :func:`nothing_else`)."""

    def name(self) -> Text:
        return "action_nothing_else"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return await nothing_else(dispatcher, tracker)
