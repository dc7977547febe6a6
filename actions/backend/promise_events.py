"""The customer backend's promises as events on a Redis stream, for the insights report.

The handoff service does not read the backend's database (separate services). So that its report
can say how many promises were made, kept, late or still open, the SQL backend publishes each
promise's lifecycle to :data:`contract.keys.PROMISE_EVENTS_STREAM` once its transaction has
committed (:meth:`actions.backend.sql.SqlBackend.transaction`, the one place that publishes):

- ``made``: ``promise_id``, ``kind`` (replacement, refund, return, redelivery, privacy, goodwill,
  ...), ``due_at`` and ``at`` (ISO 8601, UTC) and the ``conversation_id`` it was made in (empty
  when none); the only field that names anything, erased with the customer by the handoff service;
- ``kept``, ``broken``, ``cancelled``: ``promise_id``, ``kind``, ``due_at`` and ``at``.

Publishing is optional: with no Redis configured (``REDIS_URL``, or the ``REDIS_HOST`` /
``REDIS_PORT`` / ``REDIS_DB`` / ``REDIS_PASSWORD`` the action server already has for Rasa's
stores) nothing is published. A Redis that is down or slow costs at most the short socket
timeout and a logged warning: the customer's action has already succeeded, and the report misses
that promise.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence

import redis

from contract.keys import PROMISE_EVENTS_STREAM

logger = logging.getLogger(__name__)

#: What a promise can become after ``made`` (the backend's promise status besides "open").
SETTLED_STATUSES = ("kept", "broken", "cancelled")
#: About a month of a busy shop's promises; the handoff service trims to the retention as well.
MAX_STREAM_LENGTH = 100_000
SOCKET_TIMEOUT_SECONDS = 0.5


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat()


@dataclass(frozen=True)
class PromiseEvent:
    """One step in a promise's life: ``made`` or one of :data:`SETTLED_STATUSES`."""

    event: str
    promise_id: int
    kind: str
    due_at: dt.datetime
    at: dt.datetime
    conversation_id: Optional[str] = None

    def fields(self) -> Dict[str, str]:
        """The stream entry's fields (the conversation only on ``made``)."""
        fields = {"event": self.event, "promise_id": str(self.promise_id), "kind": self.kind,
                  "due_at": _iso(self.due_at), "at": _iso(self.at)}
        if self.event == "made":
            fields["conversation_id"] = self.conversation_id or ""
        return fields


class PromiseEventPublisher:
    """Appends promise events to the stream; never raises (a failure is logged)."""

    def __init__(self, client: redis.Redis, stream: str = PROMISE_EVENTS_STREAM,
                 max_length: int = MAX_STREAM_LENGTH) -> None:
        self.client = client
        self.stream = stream
        self.max_length = max_length

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> Optional[PromiseEventPublisher]:
        """A publisher on the configured Redis, or None when none is configured."""
        environ = os.environ if environ is None else environ
        timeouts = {"socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}
        url = (environ.get("REDIS_URL") or "").strip()
        if url:
            return cls(redis.Redis.from_url(url, **timeouts))
        host = (environ.get("REDIS_HOST") or "").strip()
        if not host:
            return None
        return cls(redis.Redis(host=host, port=int(environ.get("REDIS_PORT") or 6379),
                               db=int(environ.get("REDIS_DB") or 0),
                               password=environ.get("REDIS_PASSWORD") or None, **timeouts))

    def publish(self, events: Sequence[PromiseEvent]) -> bool:
        """Appends the events in order, in one round trip; False (logged) when Redis failed."""
        if not events:
            return True
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for item in events:
                    pipe.xadd(self.stream, item.fields(), maxlen=self.max_length, approximate=True)
                pipe.execute()
            return True
        except (redis.RedisError, OSError) as error:
            logger.warning("promise events not published (%s: %s); the insights report misses %d",
                           type(error).__name__, error, len(events))
            return False
