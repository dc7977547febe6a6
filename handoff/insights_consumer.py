"""The insights aggregation's own reader of the event stream, beside the live consumer.

A second consumer group (``insights``) on ``handoff:events``: the live consumer
(handoff/consumer.py) stays as fast as before for the consoles, and the aggregation reads in larger
batches (whatever arrived in the last ``interval`` seconds, up to ``batch`` entries), so its Redis
round trips are shared by many turns and conversations instead of costing a few per turn. Like the
live consumer: every entry is handled by one instance of the group, acknowledged only after its
effects are written (:meth:`handoff.insights.Aggregator.record` is idempotent, so an entry read
again counts once), and entries a crashed instance held are claimed after a minute. Every
``sweep_seconds`` it also ends idle contacts and counts late promises (:meth:`Aggregator.sweep`).

The same group reads the customer backend's promise stream (``handoff:promise-events``, written by
actions/backend/promise_events.py) the same way, right after each batch of tracker events, so a
promise usually finds the turn that made it already applied to its conversation.

A new group starts at the beginning of the stream: a first start fills the report from the
history the stream still holds (``RETENTION_DAYS``, at most ~200 000 events).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict, List, Optional, Tuple

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError, TimeoutError as RedisTimeoutError

from contract import keys
from handoff.insights import Aggregator, parse_promise_entry, relevant
from handoff.stream_group import GroupMember

logger = logging.getLogger(__name__)


def parse_entry(entry_id: str, fields: Dict[str, str]) -> Optional[Tuple[str, str, float, Dict[str, Any]]]:
    """A stream entry → ``(entry_id, conversation_id, timestamp, event)``, or None to skip it."""
    if not fields:
        return None  # erased meanwhile (XDEL)
    try:
        event = json.loads(fields.get("event") or "{}")
    except ValueError:
        return None
    if not isinstance(event, dict) or not relevant(event):
        return None
    conversation_id = fields.get("sender_id") or event.get("sender_id")
    timestamp = event.get("timestamp")
    if not conversation_id:
        return None
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        timestamp = int(entry_id.split("-")[0]) / 1000
    return entry_id, str(conversation_id), float(timestamp), event


class InsightsConsumer(GroupMember):
    """Feeds the stream to the :class:`Aggregator` until cancelled.

    Args:
        redis: the service's client (``decode_responses=True``).
        aggregator: where the events go.
        interval: seconds between two reads (what arrives meanwhile is one batch).
        batch: at most this many entries per batch.
        sweep_seconds: how often idle contacts and late promises are looked at.
    """

    def __init__(self, redis: Redis, aggregator: Aggregator, *, interval: float = 1.0, batch: int = 1000,
                 sweep_seconds: float = 30.0, name: Optional[str] = None) -> None:
        super().__init__(redis, keys.INSIGHTS_GROUP, name, batch)
        self.promise_stream = GroupMember(redis, keys.INSIGHTS_GROUP, self.name, batch,
                                          stream=keys.PROMISE_EVENTS_STREAM)
        self.aggregator = aggregator
        self.interval = interval
        self.sweep_seconds = sweep_seconds
        self.cpu_seconds = 0.0  # CPU of the aggregation in this process (benchmarks, /metrics)
        self.events = 0
        self.stopping = False
        self._reread_pending = True
        self._reread_promises = True
        self._next_sweep = 0.0

    async def run(self) -> None:
        """Reads, aggregates and acknowledges until cancelled; survives Redis outages."""
        delay = 0.5
        while not self.stopping:
            try:
                await self.ensure_group()
                await self.promise_stream.ensure_group()
                while not self.stopping:
                    handled = await self.step()
                    delay = 0.5
                    if handled < self.batch:
                        await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except (ResponseError, RedisConnectionError, RedisTimeoutError, OSError) as error:
                if not (isinstance(error, ResponseError) and "NOGROUP" in str(error)):
                    logger.warning("insights: event stream unavailable (%s); retrying", type(error).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                self._reread_pending = self._reread_promises = True

    async def step(self) -> int:
        """One batch (and the sweep when it is due); returns how many entries were handled."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_seconds
            await self._claim_stale_entries()
            await self._guarded(self.aggregator.sweep())
        start = "0" if self._reread_pending else ">"
        response = await self.redis.xreadgroup(keys.INSIGHTS_GROUP, self.name, {keys.EVENTS_STREAM: start},
                                               count=self.batch)
        entries = [entry for _, stream_entries in (response or []) for entry in stream_entries]
        if self._reread_pending and not entries:
            self._reread_pending = False
        handled = await self.handle(entries)
        return max(handled, await self._promise_step())

    async def _promise_step(self) -> int:
        """One batch of the backend's promise stream."""
        start = "0" if self._reread_promises else ">"
        response = await self.redis.xreadgroup(keys.INSIGHTS_GROUP, self.name, {keys.PROMISE_EVENTS_STREAM: start},
                                               count=self.batch)
        entries = [entry for _, stream_entries in (response or []) for entry in stream_entries]
        if self._reread_promises and not entries:
            self._reread_promises = False
        return await self.handle_promises(entries)

    async def handle_promises(self, entries: List[Any]) -> int:
        """Aggregates promise entries, then acknowledges them (a Redis error leaves them pending)."""
        if not entries:
            return 0
        batch = [parsed for entry_id, fields in entries if (parsed := parse_promise_entry(entry_id, fields or {}))]
        if batch and self.aggregator.enabled:
            started = time.process_time()
            await self._guarded(self.aggregator.record_promises(batch))
            self.cpu_seconds += time.process_time() - started
        await self.redis.xack(keys.PROMISE_EVENTS_STREAM, keys.INSIGHTS_GROUP, *[entry_id for entry_id, _ in entries])
        return len(entries)

    async def leave(self) -> None:
        """Leaves the group on both streams (when holding nothing pending)."""
        await super().leave()
        await self.promise_stream.leave()

    async def handle(self, entries: List[Any]) -> int:
        """Aggregates the entries, then acknowledges them (a Redis error leaves them pending)."""
        if not entries:
            return 0
        batch = [parsed for entry_id, fields in entries if (parsed := parse_entry(entry_id, fields))]
        if batch and self.aggregator.enabled:
            started = time.process_time()
            await self._guarded(self.aggregator.record(batch))
            await self._guarded(self.aggregator.attribute_waiting())
            self.cpu_seconds += time.process_time() - started
            self.events += len(batch)
        await self.redis.xack(keys.EVENTS_STREAM, keys.INSIGHTS_GROUP, *[entry_id for entry_id, _ in entries])
        return len(entries)

    async def _guarded(self, work: Any) -> None:
        """Runs the aggregation; Redis errors propagate (retry), a bug is logged and skipped."""
        try:
            await work
        except (RedisError, OSError):
            raise
        except Exception:  # noqa: BLE001 - a report must never stop the stream
            logger.exception("insights: batch not aggregated")

    async def _claim_stale_entries(self) -> None:
        await self.claim_stale(self.handle)
        await self.promise_stream.claim_stale(self.handle_promises)
