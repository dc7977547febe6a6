"""A Rasa event broker that appends every tracker event to a Redis Stream.

The handoff service reads the stream with a consumer group, so agents see every conversation
live, also the ones the bot is still handling. Configured in endpoints.yml::

    event_broker:
      type: bot.event_broker.RedisStreamEventBroker
      url: <redis host>
      port: 6379
      db: 0
      stream: handoff:events

(the stream's name is :data:`contract.keys.EVENTS_STREAM`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import AbstractEventLoop
from typing import Any, Dict, List, Optional, Text

import redis
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from contract import keys

logger = logging.getLogger(__name__)

DEFAULT_STREAM = keys.EVENTS_STREAM
# Keep about a day of busy traffic; the tracker store holds the full history anyway.
DEFAULT_MAX_LENGTH = 200_000


def _storable(text: str) -> str:
    """The text as valid UTF-8: a lone surrogate (JSON's "\\ud83d" sent by a client) becomes U+FFFD,
    instead of making the whole batch of a turn fail to encode."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class RedisStreamEventBroker(EventBroker):
    """Publishes tracker events with XADD (approximate MAXLEN trimming).

    Rasa publishes the events of a turn one by one while it saves the tracker. Inside the event
    loop they are collected and written together, in order, in one round trip as soon as the
    saving coroutine yields (instead of one blocking round trip per event: about 5 % of a turn).
    Outside a running loop each event is written at once. The batch is one MULTI/EXEC
    transaction: Redis serves a reader blocked on the stream only after EXEC, so the handoff
    service's XREADGROUP gets the whole turn at once (in a plain pipeline it was woken by the
    first XADD and read the turn piecemeal, or had to wait a few milliseconds for the rest).
    """

    def __init__(
        self,
        host: Text = "localhost",
        port: int = 6379,
        db: int = 0,
        password: Optional[Text] = None,
        stream: Text = DEFAULT_STREAM,
        max_length: int = DEFAULT_MAX_LENGTH,
        socket_timeout: float = 2.0,
    ) -> None:
        """Creates the broker; the connection is opened lazily by redis-py."""
        self.stream = stream
        self.max_length = int(max_length)
        self.client = redis.Redis(
            host=host, port=int(port), db=int(db), password=password or None,
            socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
        )
        self._pending: List[Dict[Text, Any]] = []

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: Optional[AbstractEventLoop] = None
    ) -> RedisStreamEventBroker:
        """Creates the broker from the ``event_broker`` section of endpoints.yml."""
        return cls(host=broker_config.url or "localhost", **broker_config.kwargs)

    def publish(self, event: Dict[Text, Any]) -> None:
        """Appends one event (see the class docstring for when it is written). A Redis failure
        is logged, never raised: the conversation goes on (the tracker store still has the
        event; only the live console view misses it)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._pending.append(event)
        if loop is None:
            self.flush()
        elif len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Writes the collected events to the stream, in order, in one round trip and one transaction."""
        events, self._pending = self._pending, []
        if not events:
            return
        try:
            pipe = self.client.pipeline(transaction=True)
            for event in events:
                pipe.xadd(
                    self.stream,
                    {"sender_id": _storable(str(event.get("sender_id", ""))),
                     "event": _storable(json.dumps(event, ensure_ascii=False, default=str))},
                    maxlen=self.max_length,
                    approximate=True,
                )
            pipe.execute()
        except (redis.RedisError, ValueError, TypeError) as error:
            logger.warning("could not publish %d event(s) (%s) to %s: %s", len(events),
                           ", ".join(sorted({str(e.get("event")) for e in events})), self.stream, error)

    def is_ready(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    async def close(self) -> None:
        """Writes what is still collected and closes the connection pool."""
        self.flush()
        self.client.close()
