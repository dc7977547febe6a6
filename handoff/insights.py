"""Insights: what customers contact us about, what came of it, and who came back (design rule 13).

Computed as the events flow, never by reading trackers when someone opens the report:

- :func:`advance` (pure) takes one conversation's state and a batch of its tracker events (as the
  event consumer reads them from ``handoff:events``) and returns the new state plus the
  :class:`Effects`: counter increments in daily buckets, waits, snippets, repeat contacts;
- :class:`Aggregator` runs it for a batch of events in one optimistic Redis transaction
  (``WATCH`` on the states it read), so a batch read twice (after an error, before the ``XACK``)
  counts once: each state remembers the last stream entry it applied;
- :class:`handoff.insights_consumer.InsightsConsumer` reads the stream with its own consumer group,
  beside the live consumer, and hands it the events in batches of about a second;
- :func:`advance_promise` (pure) and :meth:`Aggregator.record_promises` do the same for the
  customer backend's promises (replacement, refund, return, resend, ...), from the events the
  backend publishes on ``handoff:promise-events`` (actions/backend/promise_events.py), read by the
  same consumer group: each is counted under its conversation's language, channel and topic once
  that conversation's events are in, as made, then kept (by its due time), late or cancelled;
- :meth:`Aggregator.sweep` (every 30 s) ends contacts that went quiet (abandoned) and counts reply
  promises and backend promises that passed unkept (late);
- :func:`build_report` reads the buckets of a period and of the one before it.

A *contact* is one topic (``problem_intent``: order_status, complaint, ...) in one conversation,
from the moment the bot takes it in. Its outcome is ``solved`` (the bot closed it:
``utter_anything_else``), ``handed`` (a case was opened: slot ``handoff_case_id``, with the reason
from ``handoff_reason``; a contact the bot had solved that still goes to a person counts as handed),
or ``abandoned`` (no outcome after ``ABANDON_SECONDS`` of silence, or the customer moved on to
another topic). A request for a person before any topic is a contact with topic ``unspecified``.
A *repeat contact* is a contact of a verified customer about a topic they contacted us about in
another contact in the 7 days before.

Personal data: the daily buckets hold only counters and durations by day, language, channel,
topic, reason and outage. The per-conversation states (8 days), the per-customer index of recent
contacts (8 days), the snippets (the customers' own first description, masked) and the list of
repeat contacts name conversations or customers: :meth:`Aggregator.erase` removes them with the
customer, and :meth:`Aggregator.sweep_retention` drops snippets and repeats older than the
retention. A backend promise's state (until 8 days after it is due) names its conversation only
until it is counted; the erasure forgets that conversation and deletes the promise stream's
entries naming it, and the retention trims that stream. Days are UTC days.

Imports only the standard library and redis-py, so both environments can use it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from contract.log_masking import mask
from contract import keys

logger = logging.getLogger(__name__)

#: A contact with no outcome after this much silence was abandoned (Rasa's session expiry).
ABANDON_SECONDS = 3600.0
#: The same customer about the same topic within this many days is a repeat contact.
REPEAT_DAYS = 7
STATE_TTL_SECONDS = 8 * 86400
BUCKET_TTL_SECONDS = 400 * 86400
SNIPPETS_PER_TOPIC = 20
UNSPECIFIED = "unspecified"
UNKNOWN = "unknown"

#: Topic names for the report: English, and Dutch where the data is Dutch.
TOPICS: Dict[str, Tuple[str, str]] = {
    "order_status": ("Order status", "Bestelstatus"),
    "report_outage": ("Outage", "Storing"),
    "defective_product": ("Defective product", "Defect product"),
    "request_refund": ("Refund or return", "Terugbetaling of retour"),
    "account_access": ("Account access", "Toegang tot account"),
    "change_contact_details": ("Contact details", "Contactgegevens"),
    "opening_hours": ("Opening hours", "Openingstijden"),
    "complaint": ("Complaint", "Klacht"),
    "billing_dispute": ("Billing dispute", "Factuurgeschil"),
    "privacy_request": ("Privacy request", "Privacyverzoek"),
    "cancel_order": ("Cancel an order", "Bestelling annuleren"),
    "change_order": ("Change an order", "Bestelling wijzigen"),
    "invoice": ("Invoice", "Factuur"),
    "failed_payment": ("Failed payment", "Mislukte betaling"),
    "create_account": ("New account", "Account aanmaken"),
    "delete_account": ("Delete account", "Account verwijderen"),
    "newsletter": ("Newsletter", "Nieuwsbrief"),
    "feedback": ("Feedback", "Feedback"),
    "request_compensation": ("Compensation", "Vergoeding"),
    UNSPECIFIED: ("No topic given", "Geen onderwerp genoemd"),
}
#: Why a case went to a person: every contract.reasons.EscalationReason (tests/handoff/test_contract.py).
REASONS: Dict[str, str] = {
    "request": "asked for a person",
    "complexity": "complex",
    "second_miss": "second miss",
    "frustration": "frustration",
    "backend_failure": "backend failure",
    "identification_failed": "identification failed",
    "no_automation": "no automation",
    "takeover": "taken over by an agent",
}
OUTCOMES = ("solved", "handed", "abandoned")
#: Goodwill the assistant granted, by the kind in its reply (``utter_goodwill_<kind>``).
GOODWILL_KINDS = ("bill_credit", "delivery_costs", "voucher", "extra_product")
FEEDBACK_KEPT = 200
WAIT_BUCKETS = (60, 120, 300, 600, 1800, 3600)

_LONG_NUMBER = re.compile(r"(?<![\w\[])\d{6,}(?![\w\]])")


def mask_snippet(text: str, limit: int = 300) -> str:
    """A customer's sentence for the report: e-mail, phone, postcode, IBAN and long numbers
    (customer and order numbers) masked, at most ``limit`` characters."""
    masked = _LONG_NUMBER.sub("[number]", mask(text.strip()))
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def entry_key(entry_id: str) -> Tuple[int, int]:
    """A stream entry id ``"1700000000000-3"`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def day_of(timestamp: float) -> str:
    """The UTC day of a Unix timestamp, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(timestamp, timezone.utc).date().isoformat()


def counter(metric: str, language: str, channel: str, topic: str, extra: str = "") -> str:
    """A field of a daily bucket: ``metric|language|channel|topic|extra``."""
    return "|".join((metric, language or UNKNOWN, channel or UNKNOWN, topic, extra))


@dataclass
class Event:
    """One tracker event of a conversation, as the consumer read it."""

    entry_id: str
    timestamp: float
    event: Dict[str, Any]


@dataclass
class Effects:
    """What applying events changes outside the conversation's state."""

    counts: Dict[Tuple[str, str], int] = field(default_factory=dict)  # (day, field) → delta
    waits: List[Tuple[str, str]] = field(default_factory=list)  # (day, "lang|channel|topic|seconds")
    replies: List[Tuple[str, str]] = field(default_factory=list)
    snippets: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)  # (topic, snippet)
    feedback: List[Dict[str, Any]] = field(default_factory=list)
    repeats: List[Dict[str, Any]] = field(default_factory=list)
    customer_contacts: List[Tuple[str, str, float]] = field(default_factory=list)  # (customer, member, ts)

    def count(self, day: str, name: str, delta: int = 1) -> None:
        key = (day, name)
        self.counts[key] = self.counts.get(key, 0) + delta

    def empty(self) -> bool:
        return not (self.counts or self.waits or self.replies or self.snippets or self.repeats
                    or self.customer_contacts or self.feedback)


def _dims(contact: Mapping[str, Any]) -> Tuple[str, str, str]:
    return contact["language"], contact["channel"], contact["topic"]


def _new_contact(state: Dict[str, Any], topic: str, entry_id: str, timestamp: float, effects: Effects) -> Dict[str, Any]:
    contact: Dict[str, Any] = {
        "id": entry_id, "topic": topic, "day": day_of(timestamp), "start": timestamp, "last": timestamp,
        "language": state.get("language") or UNKNOWN, "channel": state.get("channel") or UNKNOWN,
        "outcome": None, "reason": None, "case_id": None, "repeat_checked": False, "snippet": False,
        "outage_counted": False, "wait_done": False, "reply_done": False, "promise_due": None,
        "promise_done": False,
    }
    effects.count(contact["day"], counter("contacts", *_dims(contact)))
    state["contact"] = contact
    return contact


def _set_outcome(contact: Dict[str, Any], outcome: str, effects: Effects, reason: Optional[str] = None) -> None:
    """Moves the contact's outcome (a solved or abandoned contact that still goes to a person
    becomes handed; nothing else changes an outcome)."""
    previous = contact["outcome"]
    if previous == outcome or (previous is not None and outcome != "handed") or previous == "handed":
        return
    language, channel, topic = _dims(contact)
    if previous is not None:
        effects.count(contact["day"], counter(previous, language, channel, topic,
                                              contact["reason"] if previous == "handed" else ""), -1)
    contact["outcome"] = outcome
    contact["reason"] = reason if outcome == "handed" else None
    effects.count(contact["day"], counter(outcome, language, channel, topic, (reason or "") if outcome == "handed" else ""))


def _attach(state: Dict[str, Any], conversation_id: str, effects: Effects,
            history: Mapping[str, Sequence[Tuple[str, float]]]) -> None:
    """What becomes known about the current contact from the conversation: the description (a
    snippet), the verified customer (a repeat check), an outage."""
    contact = state.get("contact")
    if not contact or contact["topic"] == UNSPECIFIED:
        return
    if not contact["snippet"] and state.get("description") and state.get("description_for") in (None, contact["id"]):
        contact["snippet"] = True
        state["description_for"] = contact["id"]
        effects.snippets.append((contact["topic"], {
            "text": state["description"], "language": contact["language"], "channel": contact["channel"],
            "at": contact["start"], "conversation_id": conversation_id,
        }))
    customer = state.get("customer")
    if customer and not contact["repeat_checked"]:
        contact["repeat_checked"] = True
        member = f"{contact['topic']}|{conversation_id}|{contact['id']}"
        earliest = contact["start"] - REPEAT_DAYS * 86400
        earlier = [(m, ts) for m, ts in history.get(customer, ())
                   if m.startswith(contact["topic"] + "|") and m != member and earliest <= ts <= contact["start"]]
        # A contact this batch added for the same customer counts too (two conversations in one batch).
        earlier += [(m, ts) for c, m, ts in effects.customer_contacts
                    if c == customer and m.startswith(contact["topic"] + "|") and m != member
                    and earliest <= ts <= contact["start"]]
        if earlier:
            previous_member, previous_ts = max(earlier, key=lambda item: item[1])
            effects.count(contact["day"], counter("repeat", *_dims(contact)))
            effects.repeats.append({
                "at": contact["start"], "topic": contact["topic"], "customer_id": customer,
                "conversation_id": conversation_id, "language": contact["language"],
                "channel": contact["channel"], "previous_conversation_id": previous_member.split("|")[1],
                "previous_at": previous_ts,
            })
        effects.customer_contacts.append((customer, member, contact["start"]))


def _outage_label(state: Mapping[str, Any]) -> Optional[str]:
    """``"<outage id>: <description>"`` (the backend's id, the notice's English description), or
    whichever of the two is known."""
    if state.get("outage_id") and state.get("outage"):
        return f"{state['outage_id']}: {state['outage']}"
    return state.get("outage_id") or state.get("outage") or None


def _count_outage(state: Dict[str, Any], effects: Effects) -> None:
    """Counts the contact under its outage once it has an outcome. Rasa logs an action's messages
    before its slots, so the outage's id (``topic_facts``) may come after the outcome: a contact
    counted under the notice's description moves to the id."""
    contact = state.get("contact")
    label = _outage_label(state)
    if not (contact and label and contact["outcome"]):
        return
    counted = contact.get("outage_label")
    if contact["outage_counted"] and counted not in (None, label):
        effects.count(contact["day"], counter("outage", *_dims(contact), counted), -1)
        contact["outage_counted"] = False
    if not contact["outage_counted"]:
        contact["outage_counted"] = True
        contact["outage_label"] = label
        effects.count(contact["day"], counter("outage", *_dims(contact), label))


def _case_progress(state: Dict[str, Any], cases: Mapping[str, Mapping[str, Any]], effects: Effects,
                   agent_line_at: Optional[float], open_case: Optional[str] = None) -> None:
    """Waits and promises of the contact's case, from the case store's fields."""
    contact = state.get("contact")
    if contact and contact["outcome"] == "handed" and not contact.get("case_id") and open_case:
        contact["case_id"] = open_case  # a takeover: the agent opened the case, not the bot
    if not contact or contact["outcome"] != "handed" or not contact.get("case_id"):
        return
    fields = cases.get(contact["case_id"]) or {}
    created = _float(fields.get("created_ts"))
    language, channel, topic = _dims(contact)
    if contact["promise_due"] is None and not contact["promise_done"] and fields.get("promise"):
        due = _promise_due(fields["promise"])
        if due is not None:
            contact["promise_due"] = due
            effects.count(contact["day"], counter("promise_made", language, channel, topic))
    claimed = _float(fields.get("claimed_ts"))
    if created is not None and claimed is not None and not contact["wait_done"]:
        contact["wait_done"] = True
        effects.waits.append((contact["day"], f"{language}|{channel}|{topic}|{max(0.0, claimed - created):.3f}"))
    if agent_line_at is not None and not contact["reply_done"]:
        contact["reply_done"] = True
        if created is not None:
            effects.replies.append((contact["day"], f"{language}|{channel}|{topic}|{max(0.0, agent_line_at - created):.3f}"))
        if contact["promise_due"] is not None and not contact["promise_done"]:
            contact["promise_done"] = True
            kept = agent_line_at <= contact["promise_due"]
            effects.count(contact["day"], counter("promise_kept" if kept else "promise_late", language, channel, topic))


def _float(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _promise_due(raw: str) -> Optional[float]:
    try:
        due_at = json.loads(raw).get("due_at")
        return datetime.fromisoformat(str(due_at).replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        return None


def advance(
    state: Optional[Dict[str, Any]], conversation_id: str, events: Sequence[Event], *,
    history: Mapping[str, Sequence[Tuple[str, float]]] = {},  # noqa: B006 - read only
    cases: Mapping[str, Mapping[str, Any]] = {},  # noqa: B006 - read only
    open_cases: Mapping[str, Optional[str]] = {},  # noqa: B006 - read only
    now: Optional[float] = None, topics: Iterable[str] = TOPICS,
) -> Tuple[Dict[str, Any], Effects]:
    """Applies one conversation's events (stream order) to its state; pure.

    Args:
        state: the state as stored (None for a conversation not seen yet); not modified.
        conversation_id: the conversation.
        events: its new events; those at or before the state's last applied entry are skipped.
        history: per customer, their earlier contacts ``("topic|conversation|contact", start)``.
        cases: case store fields (``created_ts``, ``claimed_ts``, ``promise``) by case id.
        open_cases: the conversation's open case id (for a takeover, which sets no slot).
        now: with no events, a housekeeping tick: ends an idle contact (abandoned) and counts an
            unkept promise past its due time (late).
        topics: the topic names that start a contact.

    Returns:
        ``(new state, effects)``.
    """
    state = json.loads(json.dumps(state)) if state else {"last_id": "0-0"}
    effects = Effects()
    known_topics = set(topics)
    last = entry_key(state.get("last_id") or "0-0")
    for item in events:
        if entry_key(item.entry_id) <= last:
            continue  # applied before (the batch was read again)
        last = entry_key(item.entry_id)
        state["last_id"] = item.entry_id
        event, ts = item.event, item.timestamp
        kind, name, value = event.get("event"), event.get("name"), event.get("value")
        contact = state.get("contact")
        agent_line_at = None
        if kind == "user":
            # The latest message, masked, for the feedback it may be (the thanks comes after it).
            text = event.get("text")
            state["last_text"] = mask_snippet(text) if isinstance(text, str) and not text.startswith("/") else None
            channel = event.get("input_channel")
            if channel:
                state["channel"] = str(channel)[:32]
            language = (event.get("parse_data") or {}).get("language")
            if language in ("nl", "en") and not state.get("language"):
                state["language"] = language
        elif kind == "slot":
            if name == "language" and value in ("nl", "en"):
                state["language"] = value
            elif name == "customer_id" and value:
                state["customer"] = str(value)
            elif name == "handoff_reason":
                state["reason"] = str(value)[:64] if value else None
                state["reason_fresh"] = bool(value)
                if value and contact and contact["outcome"] == "handed" and not contact.get("reason_final"):
                    # The service's late-opened request sets the case id before the reason.
                    contact["reason_final"] = True
                    reason = str(value) if value in REASONS else "request"
                    if reason != contact["reason"]:
                        effects.count(contact["day"], counter("handed", *_dims(contact), contact["reason"]), -1)
                        effects.count(contact["day"], counter("handed", *_dims(contact), reason))
                        contact["reason"] = reason
            elif name == "problem_description":
                if isinstance(value, str) and value.strip():
                    state["description"] = mask_snippet(value)
                    state["description_for"] = contact["id"] if contact and not contact["snippet"] else None
                else:
                    state.pop("description", None)
            elif name == "topic_facts" and isinstance(value, dict) and value.get("outage_id"):
                state["outage_id"] = str(value["outage_id"])[:64]
            elif name == "problem_intent" and value in known_topics and value != UNSPECIFIED:
                if not contact or contact["topic"] != value or contact["outcome"] is not None:
                    if contact and contact["outcome"] is None:
                        _set_outcome(contact, "abandoned", effects)  # moved on to another topic
                        _count_outage(state, effects)
                    contact = _new_contact(state, value, item.entry_id, ts, effects)
            elif name == "handoff_case_id" and value:
                if not contact or (contact["outcome"] is not None and contact.get("case_id") not in (None, value)
                                   and contact["outcome"] == "handed"):
                    contact = _new_contact(state, UNSPECIFIED, item.entry_id, ts, effects)
                if contact.get("case_id") != value:
                    contact["case_id"] = str(value)
                    fresh_reason = state.get("reason") if state.get("reason_fresh") else None
                    contact["reason_final"] = fresh_reason is not None
                    state["reason_fresh"] = False
                    _set_outcome(contact, "handed", effects, fresh_reason if fresh_reason in REASONS else "request")
        elif kind == "pause" and (not contact or contact["outcome"] != "handed" or not contact.get("case_id")):
            # Paused without a case the bot opened: an agent took the conversation over.
            if not contact or contact["outcome"] is not None:
                contact = _new_contact(state, UNSPECIFIED, item.entry_id, ts, effects)
            contact["case_id"] = open_cases.get(conversation_id)
            contact["reason_final"] = True
            _set_outcome(contact, "handed", effects, "takeover")
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            if isinstance(metadata, dict):
                if metadata.get("agent_id"):
                    agent_line_at = ts
                elif metadata.get("utter_action") == "utter_anything_else" and contact and contact["outcome"] is None:
                    _set_outcome(contact, "solved", effects)
                elif metadata.get("utter_action") == "utter_outage_notice":
                    label = metadata.get("description_en") or metadata.get("description_nl")
                    state["outage"] = str(label)[:120] if label else "outage"
                elif metadata.get("utter_action") == "utter_feedback_thanks" and state.get("last_text"):
                    effects.feedback.append({
                        "text": state.pop("last_text"), "at": ts, "conversation_id": conversation_id,
                        "language": state.get("language") or UNKNOWN, "channel": state.get("channel") or UNKNOWN})
                elif str(metadata.get("utter_action"))[len("utter_goodwill_"):] in GOODWILL_KINDS \
                        and str(metadata.get("utter_action")).startswith("utter_goodwill_"):
                    gesture = str(metadata["utter_action"])[len("utter_goodwill_"):]
                    topic = contact["topic"] if contact else UNSPECIFIED
                    effects.count(day_of(ts), counter("goodwill", state.get("language") or UNKNOWN,
                                                      state.get("channel") or UNKNOWN, topic, gesture))
        elif kind == "session_started":
            # A new session: its first description is new; the identity may carry over.
            state.pop("description", None)
            state.pop("outage", None)
            state.pop("outage_id", None)
        contact = state.get("contact")
        if contact:
            contact["last"] = ts
        _attach(state, conversation_id, effects, history)
        _count_outage(state, effects)
        _case_progress(state, cases, effects, agent_line_at, open_cases.get(conversation_id))
    if now is not None:
        contact = state.get("contact")
        if contact:
            _case_progress(state, cases, effects, None, open_cases.get(conversation_id))
            if contact["outcome"] is None and now - contact["last"] >= ABANDON_SECONDS:
                _set_outcome(contact, "abandoned", effects)
                _count_outage(state, effects)
            if (contact["outcome"] == "handed" and contact["promise_due"] is not None
                    and not contact["promise_done"] and now > contact["promise_due"]):
                contact["promise_done"] = True
                effects.count(contact["day"], counter("promise_late", *_dims(contact)))
    return state, effects


#: A case nobody answered is watched this long for its wait, first reply and promise.
WATCH_CASE_SECONDS = 2 * 86400


RELEVANT_SLOTS = frozenset({"language", "customer_id", "handoff_reason", "problem_description", "topic_facts",
                            "problem_intent", "handoff_case_id"})
RELEVANT_UTTERANCES = frozenset({"utter_anything_else", "utter_outage_notice", "utter_feedback_thanks",
                                 *(f"utter_goodwill_{kind}" for kind in GOODWILL_KINDS)})


def relevant(event: Mapping[str, Any]) -> bool:
    """Whether :func:`advance` does anything with this event."""
    kind = event.get("event")
    if kind in ("user", "pause", "session_started"):
        return True
    if kind == "slot":
        return event.get("name") in RELEVANT_SLOTS
    if kind == "bot":
        metadata = event.get("metadata")
        return isinstance(metadata, dict) and bool(
            metadata.get("agent_id") or metadata.get("utter_action") in RELEVANT_UTTERANCES)
    return False


def needs_watching(state: Optional[Mapping[str, Any]], now: Optional[float] = None) -> bool:
    """True while the state has something the sweep must still end: a contact without an outcome,
    a case whose wait or promise is not settled (for at most ``WATCH_CASE_SECONDS``)."""
    contact = (state or {}).get("contact")
    if not contact:
        return False
    if contact["outcome"] is None:
        return True
    if (contact["last"] if now is None else now) - contact["last"] > WATCH_CASE_SECONDS and (
            contact["promise_due"] is None or contact["promise_done"]):
        return False
    return contact["outcome"] == "handed" and (
        not contact["wait_done"] or not contact["reply_done"]
        or (contact["promise_due"] is not None and not contact["promise_done"]))


# --- the backend's promises (contract.keys.PROMISE_EVENTS_STREAM) ---------------------------------

#: A promise whose conversation's events have not come in after this long is counted with what
#: is known of the conversation by then (its topic may be set by the turn that made the promise).
ATTRIBUTION_GRACE_SECONDS = 60.0
#: What becomes of a backend promise, besides still open.
PROMISE_OUTCOMES = ("kept", "late", "cancelled")
#: The backend's kinds (actions/backend/base.py ``Promise.kind``), in the report's order.
PROMISE_KINDS = ("replacement", "refund", "return", "redelivery", "callback", "privacy", "goodwill")
PROMISE_METRIC = "backend_promise_"


@dataclass(frozen=True)
class PromiseEvent:
    """One entry of the backend's promise stream (actions/backend/promise_events.py)."""

    entry_id: str
    event: str  # made, kept, broken, cancelled
    promise_id: str
    kind: str
    due: float
    at: float
    conversation_id: Optional[str] = None


def parse_promise_entry(entry_id: str, fields: Mapping[str, str]) -> Optional[PromiseEvent]:
    """A promise stream entry, or None when it is not one (erased meanwhile, malformed)."""
    event, promise_id = fields.get("event"), fields.get("promise_id")
    if event not in ("made", "kept", "broken", "cancelled") or not promise_id:
        return None
    try:
        due = datetime.fromisoformat(str(fields.get("due_at")).replace("Z", "+00:00")).timestamp()
        at = datetime.fromisoformat(str(fields.get("at")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    kind = re.sub(r"[^a-z0-9_]", "", str(fields.get("kind") or "").lower())[:20] or UNKNOWN
    return PromiseEvent(entry_id, event, str(promise_id)[:40], kind, due, at,
                        str(fields.get("conversation_id") or "")[:128] or None)


def promise_outcome(state: Mapping[str, Any], now: Optional[float] = None) -> Optional[str]:
    """``kept`` (kept by its due time), ``cancelled`` (before it), ``late`` (due passed while open,
    kept or cancelled after it, or broken), or None while open."""
    settled = state.get("settled")
    if settled:
        if settled["status"] in ("kept", "cancelled") and settled["at"] <= state["due"]:
            return settled["status"]
        return "late"
    if state.get("counted") == "late" or (now is not None and now > state["due"]):
        return "late"
    return None


def _caught_up(conversation: Optional[Mapping[str, Any]], entry_id: str) -> bool:
    """Whether the conversation's events written after this promise entry were applied (both
    streams take their ids from the same Redis clock). The turn that makes a promise reaches the
    event stream only once it ends, after the promise."""
    if not conversation:
        return False
    return entry_key(conversation.get("last_id") or "0-0")[0] >= entry_key(entry_id)[0]


def _promise_counter(what: str, state: Mapping[str, Any]) -> str:
    """The daily bucket's field of a promise: ``backend_promise_<what>|language|channel|topic|kind``."""
    language, channel, topic = state["dims"]
    return counter(PROMISE_METRIC + what, language, channel, topic, state["kind"])


def advance_promise(
    state: Optional[Dict[str, Any]], events: Sequence[PromiseEvent], *,
    conversation: Optional[Mapping[str, Any]] = None, now: Optional[float] = None,
) -> Tuple[Optional[Dict[str, Any]], Effects]:
    """Applies one promise's events (stream order) to its state; pure.

    The promise is counted under the language, channel and topic of its conversation's current
    contact (``conversation``: that conversation's state, see :func:`advance`) once the
    conversation has caught up with it, or with ``now`` once ``ATTRIBUTION_GRACE_SECONDS`` passed;
    from then on the state no longer names the conversation. Everything is counted on the day the
    promise was made: made, then kept / late / cancelled (:func:`promise_outcome`); with ``now``,
    an open promise past its due time counts as late.

    Returns ``(new state, effects)``; the state is None for a settle event of an unknown promise.
    """
    state = json.loads(json.dumps(state)) if state else None
    effects = Effects()
    for item in events:
        if item.event == "made":
            if state and state.get("made_entry") == item.entry_id:
                continue  # read again
            state = {"made_entry": item.entry_id, "kind": item.kind, "due": item.due, "made_at": item.at,
                     "day": day_of(item.at), "conversation_id": item.conversation_id, "dims": None,
                     "counted": None, "settled": None}
        elif state is not None and state["settled"] is None:
            state["settled"] = {"status": item.event, "at": item.at}
    if state is None:
        return None, effects
    if state["dims"] is None:
        waited = now is not None and now - state["made_at"] >= ATTRIBUTION_GRACE_SECONDS
        if not state["conversation_id"] or _caught_up(conversation, state["made_entry"]) or waited:
            contact = (conversation or {}).get("contact") or {}
            state["dims"] = [(conversation or {}).get("language") or UNKNOWN,
                             (conversation or {}).get("channel") or UNKNOWN, contact.get("topic") or UNSPECIFIED]
            state["conversation_id"] = None
            effects.count(state["day"], _promise_counter("made", state))
    if state["dims"] is not None:
        outcome = promise_outcome(state, now)
        if outcome is not None and outcome != state["counted"]:
            if state["counted"]:
                effects.count(state["day"], _promise_counter(state["counted"], state), -1)
            effects.count(state["day"], _promise_counter(outcome, state))
            state["counted"] = outcome
    return state, effects


# --- Redis ------------------------------------------------------------------------------------


class Aggregator:
    """Writes :func:`advance`'s effects to Redis for the event consumer's batches.

    Args:
        redis: ``redis.asyncio`` client with ``decode_responses=True``.
        retention_days: snippets and repeat entries older than this go (0 = kept).
        clock: the current time (aware datetime) for the sweeps; default the system's.
    """

    def __init__(self, redis: Any, retention_days: float = 30, clock: Optional[Any] = None) -> None:
        self.redis = redis
        self.retention_days = retention_days
        # The current time (an aware datetime) for the sweep: the service's clock, which tests set.
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.enabled = True

    async def record(self, batch: Sequence[Tuple[str, str, float, Dict[str, Any]]]) -> int:
        """Applies a batch of ``(entry_id, conversation_id, timestamp, event)`` in stream order;
        returns how many conversations changed. Events that change nothing here are skipped
        before any Redis call (a conversation with none of the others costs nothing)."""
        by_conversation: Dict[str, List[Event]] = {}
        for entry_id, conversation_id, timestamp, event in batch:
            if relevant(event):
                by_conversation.setdefault(conversation_id, []).append(Event(entry_id, timestamp, event))
        if not by_conversation:
            return 0
        return await self._run(by_conversation, now=None)

    async def sweep(self, now: Optional[float] = None) -> int:
        """Ends idle contacts and counts late promises of the watched conversations; attributes
        the backend's promises that waited long enough and counts those past due as late."""
        now = self.clock().timestamp() if now is None else now
        changed = await self._sweep_promises(now)
        members = await self.redis.zrange(keys.insights_watch(), 0, -1)
        for start in range(0, len(members), 100):
            changed += await self._run({m: [] for m in members[start:start + 100]}, now=now)
        return changed

    async def _transaction(self, watched: List[str], body: Callable[[Any], Awaitable[int]], what: str) -> int:
        """Runs ``body`` as one optimistic transaction over the ``watched`` keys.

        ``body(pipe)`` reads through the pipeline (immediate mode; it may watch more keys), calls
        ``pipe.multi()``, queues its writes and returns how many items changed: nothing changed
        writes nothing. A watched key changed by another consumer meanwhile: the whole body runs
        again on the new values (at most 20 times, then the batch is skipped with a warning).
        """
        from redis.exceptions import WatchError

        for _ in range(20):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*watched)
                    changed = await body(pipe)
                    if changed:
                        await pipe.execute()
                    else:
                        await pipe.reset()
                    return changed
                except WatchError:
                    continue
        logger.warning("insights: %s changed under us 20 times; batch skipped", what)
        return 0

    async def _run(self, by_conversation: Dict[str, List[Event]], now: Optional[float]) -> int:
        state_keys = [keys.insights_conversation(c) for c in by_conversation]

        async def body(pipe: Any) -> int:
            raw_states = await pipe.mget(state_keys)
            states = {c: json.loads(raw) if raw else None for c, raw in zip(by_conversation, raw_states)}
            customers = _customers_of(states, by_conversation)
            history: Dict[str, List[Tuple[str, float]]] = {}
            if customers:
                index_keys = [keys.insights_customer(c) for c in customers]
                await pipe.watch(*index_keys)
                for customer, key in zip(customers, index_keys):
                    history[customer] = [(m, float(s)) for m, s in
                                         await pipe.zrange(key, 0, -1, withscores=True)]
            case_ids = _case_ids_of(states, by_conversation)
            cases: Dict[str, Dict[str, Any]] = {}
            open_cases: Dict[str, Optional[str]] = {}
            for conversation_id, events in by_conversation.items():
                contact = (states[conversation_id] or {}).get("contact") or {}
                if any(item.event.get("event") == "pause" for item in events) or (
                        contact.get("outcome") == "handed" and not contact.get("case_id")):
                    open_case = await pipe.get(keys.open_case(conversation_id))
                    open_cases[conversation_id] = open_case
                    if open_case:
                        case_ids.append(open_case)
            for case_id in dict.fromkeys(case_ids):
                created, claimed, promise = await pipe.hmget(keys.case(case_id), "created_ts", "claimed_ts", "promise")
                cases[case_id] = {"created_ts": created, "claimed_ts": claimed, "promise": promise}
            results = {}
            for conversation_id, events in by_conversation.items():
                results[conversation_id] = advance(states[conversation_id], conversation_id, events,
                                                   history=history, cases=cases,
                                                   open_cases=open_cases, now=now)
                # A later conversation of the batch sees this one's contacts (repeats).
                for customer, member, ts in results[conversation_id][1].customer_contacts:
                    history.setdefault(customer, []).append((member, ts))
            pipe.multi()
            changed = 0
            for conversation_id, (state, effects) in results.items():
                unchanged = state == (states[conversation_id] or {"last_id": "0-0"}) and effects.empty()
                if unchanged and not (now is not None and not needs_watching(state, now)):
                    continue
                changed += 1
                if states[conversation_id] is None and not by_conversation[conversation_id]:
                    pipe.zrem(keys.insights_watch(), conversation_id)  # expired or erased
                    continue
                self._queue_writes(pipe, conversation_id, state, effects, now)
            return changed

        return await self._transaction(state_keys, body, f"{len(by_conversation)} conversations")

    def _queue_writes(self, pipe: Any, conversation_id: str, state: Dict[str, Any], effects: Effects,
                      now: Optional[float] = None) -> None:
        pipe.set(keys.insights_conversation(conversation_id), json.dumps(state, ensure_ascii=False),
                 ex=STATE_TTL_SECONDS)
        if needs_watching(state, now):
            pipe.zadd(keys.insights_watch(), {conversation_id: state["contact"]["last"]})
        else:
            pipe.zrem(keys.insights_watch(), conversation_id)
        days = _queue_counts(pipe, effects)
        for day, value in effects.waits:
            pipe.rpush(keys.insights_waits(day), value)
            days.add(keys.insights_waits(day))
        for day, value in effects.replies:
            pipe.rpush(keys.insights_replies(day), value)
            days.add(keys.insights_replies(day))
        for key in days:
            pipe.expire(key, BUCKET_TTL_SECONDS)
        for topic, snippet in effects.snippets:
            pipe.lpush(keys.insights_snippets(topic), json.dumps(snippet, ensure_ascii=False))
            pipe.ltrim(keys.insights_snippets(topic), 0, SNIPPETS_PER_TOPIC - 1)
        for item in effects.feedback:
            pipe.lpush(keys.insights_feedback(), json.dumps(item, ensure_ascii=False))
            pipe.ltrim(keys.insights_feedback(), 0, FEEDBACK_KEPT - 1)
        for repeat in effects.repeats:
            pipe.zadd(keys.insights_repeats(), {json.dumps(repeat, ensure_ascii=False, sort_keys=True): repeat["at"]})
        for customer, member, ts in effects.customer_contacts:
            pipe.zadd(keys.insights_customer(customer), {member: ts})
            pipe.zremrangebyscore(keys.insights_customer(customer), "-inf", ts - (REPEAT_DAYS + 1) * 86400)
            pipe.expire(keys.insights_customer(customer), STATE_TTL_SECONDS)

    # --- the backend's promises -------------------------------------------------------------

    async def record_promises(self, batch: Sequence[PromiseEvent]) -> int:
        """Applies a batch of the backend's promise events in stream order; returns how many
        promises changed. Idempotent like :meth:`record`: each state remembers its ``made`` entry
        and its first settlement."""
        by_promise: Dict[str, List[PromiseEvent]] = {}
        for item in batch:
            by_promise.setdefault(item.promise_id, []).append(item)
        return await self._run_promises(by_promise, now=None) if by_promise else 0

    async def attribute_waiting(self) -> int:
        """Counts the promises that waited for their conversation once its events are in (the
        consumer calls it after each batch of tracker events; usually nothing waits)."""
        waiting = await self.redis.zrange(keys.insights_promises_unattributed(), 0, 99)
        return await self._run_promises({p: [] for p in waiting}, now=None) if waiting else 0

    async def _sweep_promises(self, now: float) -> int:
        """The promises waiting for their conversation, and the open ones past their due time."""
        waiting = await self.redis.zrange(keys.insights_promises_unattributed(), 0, -1)
        overdue = await self.redis.zrangebyscore(keys.insights_promises_due(), "-inf", f"({now}")
        promise_ids = list(dict.fromkeys(waiting + overdue))
        changed = 0
        for start in range(0, len(promise_ids), 100):
            changed += await self._run_promises({p: [] for p in promise_ids[start:start + 100]}, now=now)
        return changed

    async def _run_promises(self, by_promise: Dict[str, List[PromiseEvent]], now: Optional[float]) -> int:
        state_keys = [keys.insights_promise(p) for p in by_promise]

        async def body(pipe: Any) -> int:
            raw_states = await pipe.mget(state_keys)
            states = {p: json.loads(raw) if raw else None
                      for p, raw in zip(by_promise, raw_states, strict=True)}
            conversations: Dict[str, Optional[Dict[str, Any]]] = {}
            results = {}
            for promise_id, events in by_promise.items():
                made = [item.conversation_id for item in events if item.event == "made"]
                conversation_id = made[-1] if made else (states[promise_id] or {}).get("conversation_id")
                if conversation_id and conversation_id not in conversations:
                    raw = await pipe.get(keys.insights_conversation(conversation_id))
                    conversations[conversation_id] = json.loads(raw) if raw else None
                results[promise_id] = advance_promise(
                    states[promise_id], events, conversation=conversations.get(conversation_id or ""), now=now)
            pipe.multi()
            changed = 0
            for promise_id, (state, effects) in results.items():
                if state == states[promise_id] and effects.empty() and state is not None:
                    continue
                changed += 1
                self._queue_promise_writes(pipe, promise_id, state, effects)
            return changed

        return await self._transaction(state_keys, body, f"{len(by_promise)} promises")

    def _queue_promise_writes(self, pipe: Any, promise_id: str, state: Optional[Dict[str, Any]],
                              effects: Effects) -> None:
        unattributed, due = keys.insights_promises_unattributed(), keys.insights_promises_due()
        if state is None:  # settled but never seen made, or expired: nothing to watch
            pipe.zrem(unattributed, promise_id)
            pipe.zrem(due, promise_id)
            return
        key = keys.insights_promise(promise_id)
        # Kept until 8 days past its due time, so a settlement that arrives late still finds it.
        ttl = max(0.0, state["due"] - self.clock().timestamp()) + STATE_TTL_SECONDS
        pipe.set(key, json.dumps(state, ensure_ascii=False), ex=int(ttl))
        if state["dims"] is None:
            pipe.zadd(unattributed, {promise_id: state["made_at"]})
        else:
            pipe.zrem(unattributed, promise_id)
        if state["dims"] is not None and state["counted"] is None:
            pipe.zadd(due, {promise_id: state["due"]})
        else:
            pipe.zrem(due, promise_id)
        for day_key in _queue_counts(pipe, effects):
            pipe.expire(day_key, BUCKET_TTL_SECONDS)

    async def _forget_conversation(self, promise_id: str, conversations: Set[str]) -> int:
        """Drops the conversation from a promise still waiting to be counted (it is then counted
        without language, channel and topic); 1 if it named one of ``conversations``."""
        from redis.exceptions import WatchError

        key = keys.insights_promise(promise_id)
        for _ in range(20):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    state = _json(await pipe.get(key) or "{}")
                    if state.get("conversation_id") not in conversations:
                        await pipe.reset()
                        return 0
                    state["conversation_id"] = None
                    pipe.multi()
                    pipe.set(key, json.dumps(state, ensure_ascii=False), keepttl=True)
                    await pipe.execute()
                    return 1
                except WatchError:
                    continue
        return 0

    async def _erase_promise_entries(self, conversations: Set[str]) -> int:
        """Deletes the promise stream's entries that name one of ``conversations``."""
        deleted, start = 0, "-"
        while True:
            entries = await self.redis.xrange(keys.PROMISE_EVENTS_STREAM, min=start, max="+", count=1000)
            doomed = [entry_id for entry_id, fields in entries if fields.get("conversation_id") in conversations]
            if doomed:
                deleted += int(await self.redis.xdel(keys.PROMISE_EVENTS_STREAM, *doomed))
            if len(entries) < 1000:
                return deleted
            start = "(" + entries[-1][0]

    # --- privacy ----------------------------------------------------------------------------

    async def erase(self, customer_id: str, conversations: Iterable[str]) -> int:
        """Removes the customer's snippets, repeat entries, contact index and conversation states;
        returns how many entries went. The counters stay: they hold no personal data."""
        conversations = set(conversations)
        removed = 0
        pipe = self.redis.pipeline(transaction=True)
        for conversation_id in conversations:
            pipe.delete(keys.insights_conversation(conversation_id))
            pipe.zrem(keys.insights_watch(), conversation_id)
        pipe.delete(keys.insights_customer(customer_id))
        removed += sum(int(r) for r in await pipe.execute())
        for topic in TOPICS:
            key = keys.insights_snippets(topic)
            for raw in await self.redis.lrange(key, 0, -1):
                if _json(raw).get("conversation_id") in conversations:
                    removed += int(await self.redis.lrem(key, 0, raw))
        for raw in await self.redis.lrange(keys.insights_feedback(), 0, -1):
            if _json(raw).get("conversation_id") in conversations:
                removed += int(await self.redis.lrem(keys.insights_feedback(), 0, raw))
        for raw in await self.redis.zrange(keys.insights_repeats(), 0, -1):
            entry = _json(raw)
            if (entry.get("customer_id") == customer_id or entry.get("conversation_id") in conversations
                    or entry.get("previous_conversation_id") in conversations):
                removed += int(await self.redis.zrem(keys.insights_repeats(), raw))
        for promise_id in await self.redis.zrange(keys.insights_promises_unattributed(), 0, -1):
            removed += await self._forget_conversation(promise_id, conversations)
        if conversations:
            removed += await self._erase_promise_entries(conversations)
        return removed

    async def sweep_retention(self, now: Optional[float] = None) -> int:
        """Drops snippets, repeat entries and promise stream entries older than the retention."""
        if self.retention_days <= 0:
            return 0
        cutoff = (self.clock().timestamp() if now is None else now) - self.retention_days * 86400
        removed = int(await self.redis.zremrangebyscore(keys.insights_repeats(), "-inf", cutoff))
        removed += int(await self.redis.xtrim(keys.PROMISE_EVENTS_STREAM, minid=f"{int(cutoff * 1000)}-0",
                                              approximate=False))
        for key in [keys.insights_snippets(topic) for topic in TOPICS] + [keys.insights_feedback()]:
            for raw in await self.redis.lrange(key, 0, -1):
                if float(_json(raw).get("at") or 0) < cutoff:
                    removed += int(await self.redis.lrem(key, 0, raw))
        return removed


def _queue_counts(pipe: Any, effects: Effects) -> Set[str]:
    """Queues the effects' counter increments; returns the day keys written (to expire)."""
    days = set()
    for (day, name), delta in effects.counts.items():
        if delta:
            pipe.hincrby(keys.insights_day(day), name, delta)
            days.add(keys.insights_day(day))
    return days


def _json(raw: str) -> Dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _customers_of(states: Mapping[str, Optional[Mapping[str, Any]]], events: Mapping[str, Sequence[Event]]) -> List[str]:
    """The customers whose recent contacts a repeat check of this batch may need (few batches:
    only until each contact was checked once)."""
    found: Dict[str, None] = {}
    for conversation_id, state in states.items():
        batch = events.get(conversation_id, ())
        contact = (state or {}).get("contact") or {}
        starts = any(item.event.get("event") == "slot" and item.event.get("name") == "problem_intent" for item in batch)
        unchecked = contact and not contact.get("repeat_checked") and contact.get("topic") != UNSPECIFIED
        if state and state.get("customer") and (starts or unchecked):
            found[state["customer"]] = None
        for item in batch:
            event = item.event
            if event.get("event") == "slot" and event.get("name") == "customer_id" and event.get("value"):
                found[str(event["value"])] = None
    return list(found)


def _case_ids_of(states: Mapping[str, Optional[Mapping[str, Any]]], events: Mapping[str, Sequence[Event]]) -> List[str]:
    """The cases whose fields this batch may need: a case being opened, or one whose wait,
    first reply or promise is not settled yet."""
    found: Dict[str, None] = {}
    for conversation_id, state in states.items():
        contact = (state or {}).get("contact") or {}
        if contact.get("case_id") and contact.get("outcome") == "handed" and (
                not contact.get("wait_done") or not contact.get("reply_done")
                or (contact.get("promise_due") is not None and not contact.get("promise_done"))):
            found[contact["case_id"]] = None
        for item in events.get(conversation_id, ()):
            event = item.event
            if event.get("event") == "slot" and event.get("name") == "handoff_case_id" and event.get("value"):
                found[str(event["value"])] = None
    return list(found)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole UTC days ``first`` to ``last`` (inclusive)."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each(self) -> List[str]:
        return [(self.first + timedelta(days=i)).isoformat() for i in range(self.days)]

    def before(self) -> Period:
        """The period of the same length right before this one."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))


def parse_period(text: Optional[str], today: Optional[date] = None) -> Period:
    """``"7d"`` (the last 7 days, today included), ``"30d"``, or ``"2026-11-01..2026-11-30"``."""
    today = today or datetime.now(timezone.utc).date()
    text = (text or "7d").strip().lower()
    match = re.fullmatch(r"(\d{1,3})d", text)
    if match:
        days = int(match.group(1))
        if not 1 <= days <= 400:
            raise ValueError("a period is 1 to 400 days")
        return Period(today - timedelta(days=days - 1), today)
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text)
    if match:
        first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
        if last < first or (last - first).days >= 400:
            raise ValueError("a period runs forward and is at most 400 days")
        return Period(first, last)
    raise ValueError("period: '7d', '30d' or 'YYYY-MM-DD..YYYY-MM-DD'")


def percentile(values: Sequence[float], share: float) -> Optional[float]:
    """The ``share`` percentile (0-1) by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 3)


def _matches(language: str, channel: str, want_language: Optional[str], want_channel: Optional[str]) -> bool:
    return (want_language is None or language == want_language) and (want_channel is None or channel == want_channel)


async def _buckets(redis: Any, period: Period) -> Dict[str, Dict[str, str]]:
    pipe = redis.pipeline(transaction=False)
    for day in period.each():
        pipe.hgetall(keys.insights_day(day))
    return dict(zip(period.each(), await pipe.execute()))


async def _durations(redis: Any, period: Period, key_of: Any) -> List[Tuple[str, str, str, float]]:
    pipe = redis.pipeline(transaction=False)
    for day in period.each():
        pipe.lrange(key_of(day), 0, -1)
    found = []
    for values in await pipe.execute():
        for value in values:
            parts = value.rsplit("|", 3)
            if len(parts) == 4:
                found.append((parts[0], parts[1], parts[2], float(parts[3])))
    return found


def _summary(values: List[float]) -> Dict[str, Any]:
    return {"count": len(values), "median_seconds": percentile(values, 0.5), "p90_seconds": percentile(values, 0.9)}


async def build_report(
    redis: Any, period: Period, *, language: Optional[str] = None, channel: Optional[str] = None,
    snippets_per_topic: int = 5, now: Optional[float] = None,
) -> Dict[str, Any]:
    """The report over ``period`` next to the period before it, optionally for one language or
    channel (see the module doc for what is counted)."""
    previous = period.before()
    current_buckets = await _buckets(redis, period)
    previous_buckets = await _buckets(redis, previous)

    topics: Dict[str, Dict[str, Any]] = {}
    reasons: Dict[str, int] = {}
    outages: Dict[str, int] = {}
    by_language: Dict[str, int] = {}
    by_channel: Dict[str, int] = {}
    promises = {"made": 0, "kept": 0, "late": 0}
    backend_promises: Dict[str, Dict[str, int]] = {}
    goodwill: Dict[str, int] = {}
    daily = []
    languages_seen: Set[str] = set()
    channels_seen: Set[str] = set()

    def topic_entry(topic: str) -> Dict[str, Any]:
        if topic not in topics:
            en, nl = TOPICS.get(topic, (topic.replace("_", " ").capitalize(), topic))
            topics[topic] = {"topic": topic, "name_en": en, "name_nl": nl, "contacts": 0, "previous": 0,
                             "solved": 0, "handed": 0, "abandoned": 0, "reasons": {}, "repeat": 0,
                             "languages": {}, "promises": _promise_figures()}
        return topics[topic]

    for day, fields in current_buckets.items():
        row: Dict[str, Any] = {"day": day, "contacts": 0, "solved": 0, "handed": 0, "abandoned": 0, "topics": {}}
        for name, raw in fields.items():
            metric, lang, chan, topic, extra = (name.split("|") + [""] * 5)[:5]
            languages_seen.add(lang)
            channels_seen.add(chan)
            if not _matches(lang, chan, language, channel):
                continue
            value = int(raw)
            entry = topic_entry(topic)
            if metric == "contacts":
                entry["contacts"] += value
                entry["languages"][lang] = entry["languages"].get(lang, 0) + value
                by_language[lang] = by_language.get(lang, 0) + value
                by_channel[chan] = by_channel.get(chan, 0) + value
                row["contacts"] += value
                row["topics"][topic] = row["topics"].get(topic, 0) + value
            elif metric in OUTCOMES:
                entry[metric] += value
                row[metric] += value
                if metric == "handed":
                    entry["reasons"][extra] = entry["reasons"].get(extra, 0) + value
                    reasons[extra] = reasons.get(extra, 0) + value
            elif metric == "repeat":
                entry["repeat"] += value
            elif metric == "outage":
                outages[extra] = outages.get(extra, 0) + value
            elif metric.startswith(PROMISE_METRIC):
                what = metric[len(PROMISE_METRIC):]
                if what in entry["promises"]:
                    entry["promises"][what] += value
                    backend_promises.setdefault(extra, _promise_figures())[what] += value
            elif metric.startswith("promise_"):
                promises[metric[len("promise_"):]] += value
            elif metric == "goodwill":
                goodwill[extra] = goodwill.get(extra, 0) + value
                entry["goodwill"] = entry.get("goodwill", 0) + value
        daily.append(row)
    for fields in previous_buckets.values():
        for name, raw in fields.items():
            metric, lang, chan, topic = (name.split("|") + [""] * 5)[:4]
            if metric == "contacts" and _matches(lang, chan, language, channel):
                topic_entry(topic)["previous"] += int(raw)

    for entry in topics.values():
        entry["open"] = max(0, entry["contacts"] - entry["solved"] - entry["handed"] - entry["abandoned"])
        entry["change"] = entry["contacts"] - entry["previous"]
        entry["change_percent"] = (round(100.0 * entry["change"] / entry["previous"], 1)
                                   if entry["previous"] else None)
        entry["name"] = entry["name_nl"] if entry["languages"] and max(
            entry["languages"], key=entry["languages"].get) == "nl" else entry["name_en"]
        entry["snippets"] = []
        _settle_open(entry["promises"])
    ordered = sorted((t for t in topics.values() if t["contacts"] or t["previous"]),
                     key=lambda t: (-t["contacts"], t["topic"]))

    for entry in ordered:
        if entry["contacts"]:
            raw = await redis.lrange(keys.insights_snippets(entry["topic"]), 0, SNIPPETS_PER_TOPIC - 1)
            for snippet in map(_json, raw):
                at = float(snippet.get("at") or 0)
                if (period.first.isoformat() <= day_of(at) <= period.last.isoformat()
                        and _matches(snippet.get("language", ""), snippet.get("channel", ""), language, channel)):
                    entry["snippets"].append({"text": snippet.get("text", ""), "language": snippet.get("language"),
                                              "channel": snippet.get("channel"), "at": _iso(at)})
                if len(entry["snippets"]) >= snippets_per_topic:
                    break

    start_ts = datetime.combine(period.first, datetime.min.time(), timezone.utc).timestamp()
    end_ts = datetime.combine(period.last + timedelta(days=1), datetime.min.time(), timezone.utc).timestamp()
    repeats = []
    for raw in await redis.zrangebyscore(keys.insights_repeats(), start_ts, f"({end_ts}"):
        entry = _json(raw)
        if _matches(entry.get("language", ""), entry.get("channel", ""), language, channel):
            repeats.append({**entry, "at": _iso(float(entry.get("at") or 0)),
                            "previous_at": _iso(float(entry.get("previous_at") or 0))})
    repeats.sort(key=lambda r: r["at"], reverse=True)

    waits = [v for lang, chan, _, v in await _durations(redis, period, keys.insights_waits)
             if _matches(lang, chan, language, channel)]
    replies = [v for lang, chan, _, v in await _durations(redis, period, keys.insights_replies)
               if _matches(lang, chan, language, channel)]
    histogram = []
    lower = 0
    for upper in (*WAIT_BUCKETS, None):
        histogram.append({"from_seconds": lower, "to_seconds": upper,
                          "count": sum(1 for v in waits if v >= lower and (upper is None or v < upper))})
        lower = upper or lower
    overdue_now = await _overdue_now(redis, now)

    totals = {metric: sum(t[metric] for t in ordered) for metric in
              ("contacts", "previous", "solved", "handed", "abandoned", "open", "repeat")}
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "days": period.days},
        "previous_period": {"from": previous.first.isoformat(), "to": previous.last.isoformat()},
        "filters": {"language": language, "channel": channel},
        "available": {"languages": sorted(languages_seen), "channels": sorted(channels_seen)},
        "totals": totals,
        "topics": ordered,
        "reasons": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        "reason_names": REASONS,
        "by_language": by_language,
        "by_channel": by_channel,
        "daily": daily,
        "repeats": repeats,
        "outages": [{"outage": k, "contacts": v} for k, v in sorted(outages.items(), key=lambda i: (-i[1], i[0]))],
        "waiting": {"wait_for_person": _summary(waits), "first_human_reply": _summary(replies),
                    "histogram": histogram, "past_promised_reply_now": overdue_now},
        "promises": {**promises, "open": max(0, promises["made"] - promises["kept"] - promises["late"])},
        "backend_promises": _backend_promises(backend_promises),
        "goodwill": {"granted": sum(goodwill.values()), "by_kind": dict(sorted(goodwill.items())),
                     "note": "gestures the assistant granted (credits, delivery costs back, vouchers, extras); "
                             "the amounts are in the backend"},
        "feedback": {"items": await _feedback(redis, period, language, channel),
                     "note": "what customers told us, verbatim (personal data masked), newest first"},
    }


def _promise_figures() -> Dict[str, int]:
    return {"made": 0, **{outcome: 0 for outcome in PROMISE_OUTCOMES}}


def _settle_open(figures: Dict[str, int]) -> Dict[str, int]:
    """Adds ``open``: made and neither kept, late nor cancelled yet."""
    figures["open"] = max(0, figures["made"] - sum(figures[outcome] for outcome in PROMISE_OUTCOMES))
    return figures


def _backend_promises(by_kind: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
    """The backend's promises made in the period per kind (the known kinds first), and in all."""
    order = {kind: index for index, kind in enumerate(PROMISE_KINDS)}
    kinds: List[Dict[str, Any]] = [{"kind": kind, **_settle_open(figures)} for kind, figures in
             sorted(by_kind.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))]
    total = _settle_open({what: sum(k[what] for k in kinds) for what in ("made", *PROMISE_OUTCOMES)})
    return {"kinds": kinds, "total": total,
            "note": "promises the assistant made in the customer backend (a replacement, refund, return, resend, "
                    "erasure, goodwill, ...) in the period, and what became of them: kept by their due time, late "
                    "(due passed while open, kept after it, or broken), cancelled, still open"}


async def _feedback(redis: Any, period: Period, language: Optional[str], channel: Optional[str]) -> List[Dict[str, Any]]:
    """The feedback given in the period, newest first (at most ``FEEDBACK_KEPT`` are kept)."""
    items = []
    for raw in await redis.lrange(keys.insights_feedback(), 0, -1):
        item = _json(raw)
        at = float(item.get("at") or 0)
        if not item.get("text") or not period.first.isoformat() <= day_of(at) <= period.last.isoformat():
            continue
        if not _matches(item.get("language") or UNKNOWN, item.get("channel") or UNKNOWN, language, channel):
            continue
        items.append({"text": item["text"], "language": item.get("language"), "channel": item.get("channel"),
                      "at": _iso(at)})
    return items


async def _overdue_now(redis: Any, now: Optional[float]) -> int:
    """Open cases whose reply promise is past due and unkept, now (the case store)."""
    now = time.time() if now is None else now
    case_ids = []
    for status in ("queued", "human"):
        case_ids += await redis.zrange(keys.cases_by_status(status), 0, -1)
    if not case_ids:
        return 0
    pipe = redis.pipeline(transaction=False)
    for case_id in case_ids:
        pipe.hmget(keys.case(case_id), "promise", "promise_kept_at")
    overdue = 0
    for promise, kept in await pipe.execute():
        due = _promise_due(promise) if promise else None
        if due is not None and not kept and now > due:
            overdue += 1
    return overdue


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def report_rows(report: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One row per topic for CSV: counts, change, outcomes, every reason and the backend's
    promises made about it."""
    rows = []
    for topic in report["topics"]:
        row = {"topic": topic["topic"], "name": topic["name"], "contacts": topic["contacts"],
               "previous": topic["previous"], "change": topic["change"], "solved": topic["solved"],
               "handed": topic["handed"], "abandoned": topic["abandoned"], "open": topic["open"],
               "repeat": topic["repeat"]}
        for reason in REASONS:
            row[f"handed_{reason}"] = topic["reasons"].get(reason, 0)
        for what, count in topic["promises"].items():
            row[f"promises_{what}"] = count
        rows.append(row)
    return rows


def promise_rows(report: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One row per kind of promise for CSV: the case reply promises, then the backend's kinds."""
    reply = report["promises"]
    rows = [{"promise": "reply (handoff cases)", "made": reply["made"], "kept": reply["kept"], "late": reply["late"],
             "cancelled": 0, "open": reply["open"]}]
    rows += [{"promise": kind["kind"], **{what: kind[what] for what in ("made", *PROMISE_OUTCOMES, "open")}}
             for kind in report["backend_promises"]["kinds"]]
    return rows
