"""Every Redis key of the handoff service, in one place, under one prefix.

Keeping the names here means a reader can see the whole data model at a glance, and an operator
can find (or delete) everything the service owns with ``SCAN MATCH handoff:*``.
"""

from __future__ import annotations

PREFIX = "handoff:"

#: The stream Rasa's event broker appends every tracker event to.
EVENTS_STREAM = f"{PREFIX}events"
#: The consumer group all service instances share (each event is processed once).
EVENTS_GROUP = "handoff"
#: The insights aggregation's own group on the same stream (handoff/insights_consumer.py).
INSIGHTS_GROUP = "insights"
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
    """Exists while one instance runs the retention sweep (handoff/privacy.py)."""
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
