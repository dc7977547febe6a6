"""Every Redis key and stream name of the assistant and the handoff service, in one place.

A reader sees the whole data model at a glance, and an operator can find (or delete) what each
part owns with ``SCAN MATCH``:

``handoff:*``
    The handoff service: cases, queue, promises, notes, transcripts, agents, sessions, insights;
    and the event stream Rasa's event broker (bot/event_broker.py) appends every tracker event
    to, read by the service's consumer groups, and the stream the customer backend appends its
    promises' lifecycle to (:data:`PROMISE_EVENTS_STREAM`), read by the insights aggregation.
``helder:tracker:<sender_id>``
    A conversation's Rasa tracker (:func:`tracker_key`; endpoints.yml ``key_prefix``). Rasa's
    lock store uses the same prefix for its locks.
``whatsapp:*``
    The WhatsApp channel's state (bot/channels/whatsapp_state.py): the 24-hour window
    (:mod:`contract.whatsapp_window`), the template invitation, delivered message ids; and its
    rate limit.
``webchat:ratelimit:*``
    The web chat's rate limit (bot/channels/rate_limit.py).
``helder:socketio:<db>``
    The pub/sub channel the Rasa replicas share the web chat's socket.io rooms on.

endpoints.yml repeats the tracker prefix and the stream name as literals (Rasa reads them there);
tests/unit/test_contract.py checks they equal the ones here.
"""

from __future__ import annotations

from typing import Optional

# --- the handoff service ------------------------------------------------------------------------

PREFIX = "handoff:"

#: The stream Rasa's event broker appends every tracker event to (endpoints.yml ``event_broker.stream``).
EVENTS_STREAM = f"{PREFIX}events"
#: The consumer group all service instances share (each event is processed once).
EVENTS_GROUP = "handoff"
#: The insights aggregation's own group on the same stream (handoff/insights_consumer.py).
INSIGHTS_GROUP = "insights"
#: The stream the customer backend appends its promises' lifecycle to (made, kept, broken,
#: cancelled; actions/backend/promise_events.py), read by the insights aggregation's group.
PROMISE_EVENTS_STREAM = f"{PREFIX}promise-events"
#: Pub/sub channel that fans pushes out to the websockets of every instance.
PUSH_CHANNEL = f"{PREFIX}push"

CASE_STATUSES = ("queued", "human", "bot", "resolved")


def case(case_id: str) -> str:
    """Hash with the fields of one case."""
    return f"{PREFIX}case:{case_id}"


def case_notes(case_id: str) -> str:
    """List of a case's private notes (JSON), oldest first."""
    return f"{PREFIX}case:{case_id}:notes"


def cases_by_status(status: str) -> str:
    """Sorted set of case ids in one status, scored by creation time."""
    return f"{PREFIX}cases:{status}"


def queue() -> str:
    """Sorted set of queued case ids, scored by creation time: the queue order."""
    return f"{PREFIX}queue"


def open_case(conversation_id: str) -> str:
    """The id of a conversation's open (queued or human) case; absent when the bot owns it."""
    return f"{PREFIX}conversation:{conversation_id}:open_case"


def conversation_cases(conversation_id: str) -> str:
    """Sorted set of every case a conversation ever had, scored by creation time."""
    return f"{PREFIX}conversation:{conversation_id}:cases"


def conversation(conversation_id: str) -> str:
    """Hash summarising one live conversation (last line, language, channel)."""
    return f"{PREFIX}conversation:{conversation_id}"


def conversations() -> str:
    """Sorted set of conversation ids scored by their latest activity."""
    return f"{PREFIX}conversations"


def transcript(conversation_id: str) -> str:
    """Sorted set of line keys of a conversation, scored by the line's time."""
    return f"{PREFIX}transcript:{conversation_id}"


def transcript_lines(conversation_id: str) -> str:
    """Hash line key → line JSON; the key makes a line that arrives twice count once."""
    return f"{PREFIX}transcript:{conversation_id}:lines"


def agent(username: str) -> str:
    """Hash with an agent's display name and scrypt password hash."""
    return f"{PREFIX}agent:{username}"


def agents() -> str:
    """Set of all agent usernames."""
    return f"{PREFIX}agents"


def presence(username: str) -> str:
    """Exists (60 s TTL, refreshed by the console's websocket) while the agent is available."""
    return f"{PREFIX}presence:{username}"


def session(session_id: str) -> str:
    """Hash of a signed-in session (agent, CSRF token), expiring with the session."""
    return f"{PREFIX}session:{session_id}"


def login_failures(username: str) -> str:
    """Counter of recent failed logins for a username (slows down password guessing)."""
    return f"{PREFIX}login_failures:{username}"


def retention_lock() -> str:
    """Exists while one instance runs the retention sweep (handoff/erasure.py)."""
    return f"{PREFIX}retention:lock"


def pending_requests() -> str:
    """Hash conversation id → reason: requests for a person not opened yet (handoff/pending.py)."""
    return f"{PREFIX}pending"


def pending_lock(conversation_id: str) -> str:
    """Exists while one instance opens a conversation's pending request."""
    return f"{PREFIX}pending:lock:{conversation_id}"


# --- insights (handoff/insights.py) ----------------------------------------------------------------


def insights_day(day: str) -> str:
    """Hash of one UTC day's counters ``metric|language|channel|topic|extra`` → count (no personal data)."""
    return f"{PREFIX}insights:day:{day}"


def insights_waits(day: str) -> str:
    """List of one day's waits for a person, ``language|channel|topic|seconds``."""
    return f"{PREFIX}insights:day:{day}:waits"


def insights_replies(day: str) -> str:
    """List of one day's times to the first human reply, ``language|channel|topic|seconds``."""
    return f"{PREFIX}insights:day:{day}:replies"


def insights_conversation(conversation_id: str) -> str:
    """JSON state of one conversation's current contact (8 days; erased with the customer)."""
    return f"{PREFIX}insights:conversation:{conversation_id}"


def insights_watch() -> str:
    """Sorted set of conversations whose contact is not settled yet, scored by last activity."""
    return f"{PREFIX}insights:watch"


def insights_customer(customer_id: str) -> str:
    """Sorted set of a customer's recent contacts ``topic|conversation|contact`` (repeat contacts)."""
    return f"{PREFIX}insights:customer:{customer_id}"


def insights_snippets(topic: str) -> str:
    """List of a topic's most recent problem descriptions (masked JSON), newest first."""
    return f"{PREFIX}insights:snippets:{topic}"


def insights_feedback() -> str:
    """List: customer feedback as given, masked, newest first (JSON entries)."""
    return f"{PREFIX}insights:feedback"


def insights_repeats() -> str:
    """Sorted set of repeat contacts (JSON), scored by time."""
    return f"{PREFIX}insights:repeats"


def insights_promise(promise_id: str) -> str:
    """JSON state of one backend promise: kind, due time, day, where it is counted, its outcome
    (the conversation id only until it is attributed; erased with the customer)."""
    return f"{PREFIX}insights:promise:{promise_id}"


def insights_promises_due() -> str:
    """Sorted set of counted backend promises still open, scored by their due time."""
    return f"{PREFIX}insights:promises:due"


def insights_promises_unattributed() -> str:
    """Sorted set of backend promises waiting for their conversation's events, scored by when made."""
    return f"{PREFIX}insights:promises:unattributed"


# --- Rasa's tracker store (endpoints.yml tracker_store) ----------------------------------------------

#: endpoints.yml ``tracker_store.key_prefix`` (and ``lock_store.key_prefix``).
DEFAULT_TRACKER_KEY_PREFIX = "helder"
_RASA_TRACKER_PART = "tracker:"


def tracker_prefix(key_prefix: Optional[str] = DEFAULT_TRACKER_KEY_PREFIX) -> str:
    """What Rasa's Redis tracker store puts in front of a sender id, for this ``key_prefix``.

    Rasa ignores a prefix that is not alphanumeric and then uses ``tracker:<sender_id>``
    (tests/unit/test_retention.py checks this against Rasa's own store).
    """
    if isinstance(key_prefix, str) and key_prefix.isalnum():
        return f"{key_prefix}:{_RASA_TRACKER_PART}"
    return _RASA_TRACKER_PART


def tracker_key(sender_id: str, key_prefix: Optional[str] = DEFAULT_TRACKER_KEY_PREFIX) -> str:
    """The Redis key of one conversation's tracker (``helder:tracker:<sender_id>``)."""
    return tracker_prefix(key_prefix) + sender_id


# --- the WhatsApp channel (bot/channels/whatsapp_state.py) ------------------------------------------

#: The WhatsApp channel's key prefix (its state and its rate limit).
WHATSAPP_PREFIX = "whatsapp"


def whatsapp_window(wa_id: str) -> str:
    """Unix time (seconds, as a string) of the customer's last inbound message, as WhatsApp
    timestamped it; kept a week so "closed since ..." can be told from "never wrote"."""
    return f"{WHATSAPP_PREFIX}:window:{wa_id}"


def whatsapp_template(wa_id: str) -> str:
    """Set while a template invitation is out in the current closed window (one per window);
    cleared when the customer writes again."""
    return f"{WHATSAPP_PREFIX}:template:{wa_id}"


def whatsapp_language(wa_id: str) -> str:
    """Held the language of the last free text sent to the customer. No longer written (the
    channel reads the ``language`` slot); kept so an erasure removes what older installations
    stored, for up to 30 days."""
    return f"{WHATSAPP_PREFIX}:lang:{wa_id}"


def whatsapp_seen(message_id: str) -> str:
    """Marks a WhatsApp message id as delivered to the assistant (Meta redelivers; 48 hours)."""
    return f"{WHATSAPP_PREFIX}:seen:{message_id}"


# --- the channels' rate limits (bot/channels/rate_limit.py) ------------------------------------------

#: The web chat's key prefix (its rate limit).
WEBCHAT_PREFIX = "webchat"


def ratelimit_counter(channel_prefix: str, scope: str, identity_hash: str) -> str:
    """Messages of one sender/session/IP (``scope``) in the current window (expires with it)."""
    return f"{channel_prefix}:ratelimit:{scope}:{identity_hash}"


def ratelimit_notice(channel_prefix: str, identity_hash: str) -> str:
    """Set once the over-limit notice of the current window is out to this identity."""
    return f"{channel_prefix}:ratelimit:notice:{identity_hash}"


def ratelimit_stats(channel_prefix: str) -> str:
    """Hash: refused messages per scope, since ever."""
    return f"{channel_prefix}:ratelimit:stats"


# --- the web chat's rooms shared by the Rasa replicas (bot/channels/webchat.py) ----------------------

#: Prefix of the pub/sub channel the Rasa replicas share the socket.io rooms on.
SOCKETIO_ROOMS_PREFIX = "helder:socketio"


def socketio_rooms(db: int) -> str:
    """The rooms' pub/sub channel for one Redis database (pub/sub is not per database, and two
    installations may share one Redis server)."""
    return f"{SOCKETIO_ROOMS_PREFIX}:{db}"
