"""The event consumer's batches: one transaction and one XACK per batch, and what that must keep.

At-least-once: a batch is acknowledged only after it was handled, so a Redis failure in the middle
leaves the entries that were not done pending, and they are handled (once, no doubled lines) when
Redis is back. Lines of one conversation reach the console in stream order, each conversation's
summary once per batch and after its lines.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Dict, List

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import redis as sync_redis  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402

from contract import keys  # noqa: E402
from handoff.consumer import EventConsumer, Hub, stop_task  # noqa: E402
from handoff.settings import Settings  # noqa: E402
from handoff.store import Store  # noqa: E402
from tests.handoff.conftest import async_fixture, eventually  # noqa: E402
from tests.handoff.test_api import xadd  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class Pushes:
    """What the consoles receive: every push on the pub/sub channel, in order."""

    def __init__(self, redis_sync: sync_redis.Redis) -> None:
        self.pubsub = redis_sync.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(keys.PUSH_CHANNEL)
        self.received: List[Dict[str, Any]] = []

    def collect(self) -> List[Dict[str, Any]]:
        """Everything received so far (waits until nothing came for 0.2 s)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.2:
            message = self.pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "message":
                self.received.append(json.loads(message["data"]))
                quiet_since = time.monotonic()
        return self.received

    def lines(self, conversation_id: str) -> List[str]:
        return [p["line"]["text"] for p in self.collect()
                if p["type"] == "line" and p["conversation_id"] == conversation_id]

    def summaries(self, conversation_id: str) -> List[Dict[str, Any]]:
        return [p["conversation"] for p in self.collect()
                if p["type"] == "conversation" and p["conversation"]["conversation_id"] == conversation_id]

    def close(self) -> None:
        self.pubsub.close()


class FailingStore(Store):
    """Redis goes away during the n-th batch write (before anything of it is applied); what was
    pending and recorded at that moment is kept for the test to look at."""

    def __init__(self, redis_sync: sync_redis.Redis, *args: Any, fail_on: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_sync = redis_sync
        self.calls = 0
        self.fail_on = fail_on
        self.pending_at_failure: List[str] = []
        self.lines_at_failure: Dict[str, List[str]] = {}

    async def record_events(self, *args: Any, **kwargs: Any):
        self.calls += 1
        if self.calls == self.fail_on:
            self.pending_at_failure = pending(self.redis_sync)
            self.lines_at_failure = {c: [line.text for line in await self.transcript(c)] for c in ("conv-a", "conv-b")}
            raise RedisConnectionError("Connection reset by peer")
        return await super().record_events(*args, **kwargs)


@async_fixture
async def redis_async(redis_url: str, redis_sync: sync_redis.Redis):
    client = Redis.from_url(redis_url, decode_responses=True, socket_timeout=5.0)
    yield client
    await client.aclose()


@pytest.fixture
def pushes(redis_sync: sync_redis.Redis):
    found = Pushes(redis_sync)
    yield found
    found.close()


def store_settings(redis_url: str) -> Settings:
    return Settings(env="local", redis_url=redis_url)


def turn(redis_sync: sync_redis.Redis, conversation_id: str, at: float, text: str, reply: str) -> None:
    """A customer turn as Rasa's broker writes it: actions and slots around the two lines."""
    xadd(redis_sync, conversation_id, {"event": "user", "text": text, "timestamp": at, "input_channel": "socketio",
                                       "parse_data": {"intent": {"name": "order_status"}, "language": "en"}})
    xadd(redis_sync, conversation_id, {"event": "user_featurization", "timestamp": at + 0.01})
    xadd(redis_sync, conversation_id, {"event": "action", "name": "action_order_status", "timestamp": at + 0.02})
    xadd(redis_sync, conversation_id, {"event": "slot", "name": "order_number", "value": "2024", "timestamp": at + 0.03})
    xadd(redis_sync, conversation_id, {"event": "bot", "text": reply, "timestamp": at + 0.04})
    xadd(redis_sync, conversation_id, {"event": "action", "name": "action_listen", "timestamp": at + 0.05})


def pending(redis_sync: sync_redis.Redis) -> List[str]:
    return [p["message_id"] for p in redis_sync.xpending_range(keys.EVENTS_STREAM, keys.EVENTS_GROUP, "-", "+", 1000)]


@pytest.mark.asyncio
async def test_a_redis_failure_mid_batch_leaves_the_rest_pending_and_it_is_handled_after_recovery(
    redis_url: str, redis_sync: sync_redis.Redis, redis_async: Redis, pushes: Pushes,
) -> None:
    now = time.time()
    for number in range(3):  # a, b, a, b, a, b: 36 entries, lines of a and b interleaved
        turn(redis_sync, "conv-a", now + number * 10, f"a question {number}", f"a answer {number}")
        turn(redis_sync, "conv-b", now + number * 10 + 5, f"b question {number}", f"b answer {number}")
    ids = [entry_id for entry_id, _ in redis_sync.xrange(keys.EVENTS_STREAM)]
    store = FailingStore(redis_sync, redis_async, store_settings(redis_url), fail_on=2)
    consumer = EventConsumer(redis_async, store, Hub(redis_async), name="test", batch=10, linger_ms=0)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _done(redis_sync, len(ids)))
    finally:
        consumer.stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # When the second batch failed, the first was acknowledged and the second, read but not
    # handled, was pending (the rest was not read yet); nothing of the second was recorded.
    assert store.calls > 2
    assert store.pending_at_failure == ids[10:20]
    assert store.lines_at_failure == {"conv-a": ["a question 0", "a answer 0"], "conv-b": ["b question 0"]}
    # After the failure run() read the pending entries again, then the new ones.
    for conversation in ("a", "b"):
        expected = [text for number in range(3) for text in (f"{conversation} question {number}",
                                                             f"{conversation} answer {number}")]
        stored = await store.transcript(f"conv-{conversation}")
        assert [line.text for line in stored] == expected  # every line once, in order
        assert pushes.lines(f"conv-{conversation}") == expected  # and pushed in that order
        summary = pushes.summaries(f"conv-{conversation}")[-1]
        assert summary["last_text"] == expected[-1] and summary["language"] == "en"
        assert summary["channel"] == "socketio"
    assert pending(redis_sync) == []


async def _done(redis_sync: sync_redis.Redis, count: int) -> bool:
    groups = redis_sync.xinfo_groups(keys.EVENTS_STREAM)  # empty until run() created the group
    return bool(groups) and groups[0]["entries-read"] == count and groups[0]["pending"] == 0


@pytest.mark.asyncio
async def test_a_batch_written_but_not_acknowledged_is_redone_without_doubling(
    redis_url: str, redis_sync: sync_redis.Redis, redis_async: Redis, pushes: Pushes,
) -> None:
    """Redis fails after the batch's transaction, at the pushes and XACK: the batch is read again."""
    now = time.time()
    turn(redis_sync, "conv-c", now, "where is it?", "On its way.")
    store = Store(redis_async, store_settings(redis_url))
    consumer = EventConsumer(redis_async, store, Hub(redis_async), name="test", linger_ms=0)
    await consumer.ensure_group()
    real = consumer._push_and_ack

    async def lost_connection(*args: Any) -> None:
        raise RedisConnectionError("Connection reset by peer")

    assert await consumer.step() == 0  # at start it looks for entries of its own left pending
    consumer._push_and_ack = lost_connection  # type: ignore[method-assign]
    with pytest.raises(RedisConnectionError):
        await consumer.step()
    assert len(pending(redis_sync)) == 6 and pushes.collect() == []

    consumer._push_and_ack = real  # type: ignore[method-assign]
    consumer._reread_pending = True  # what run() does after the error
    assert await consumer.step() == 6
    assert [line.text for line in await store.transcript("conv-c")] == ["where is it?", "On its way."]
    # The first attempt's pushes never went out: the redone batch sends the lines and the summary.
    assert pushes.lines("conv-c") == ["where is it?", "On its way."]
    assert pushes.summaries("conv-c")[-1]["last_text"] == "On its way."
    assert pending(redis_sync) == []


@pytest.mark.asyncio
async def test_one_batch_touches_once_and_pushes_each_summary_once_after_its_lines(
    redis_url: str, redis_sync: sync_redis.Redis, redis_async: Redis, pushes: Pushes,
) -> None:
    now = time.time()
    # conv-q only has actions and slots (a session start): registered with its first timestamp.
    xadd(redis_sync, "conv-q", {"event": "action", "name": "action_session_start", "timestamp": now - 30})
    xadd(redis_sync, "conv-q", {"event": "session_started", "timestamp": now - 29})
    turn(redis_sync, "conv-l", now - 20, "first", "second")
    xadd(redis_sync, "conv-q", {"event": "action", "name": "action_listen", "timestamp": now - 10})
    xadd(redis_sync, "conv-l", {"event": "slot", "name": "language", "value": "nl", "timestamp": now - 5})
    xadd(redis_sync, "conv-l", {"event": "bot", "text": "third", "timestamp": now - 4})
    xadd(redis_sync, "conv-l", {"event": "slot", "name": "requested_slot", "value": None, "timestamp": now - 3})
    store = Store(redis_async, store_settings(redis_url))
    consumer = EventConsumer(redis_async, store, Hub(redis_async), name="test")
    await consumer.ensure_group()
    assert await consumer.step() == 0  # at start it looks for entries of its own left pending
    assert await consumer.step() == 12  # one batch

    assert redis_sync.zscore(keys.conversations(), "conv-q") == pytest.approx(now - 30)
    assert redis_sync.zscore(keys.conversations(), "conv-l") == pytest.approx(now - 4)  # its newest line
    received = [(p["type"], p.get("conversation_id") or p["conversation"]["conversation_id"])
                for p in pushes.collect()]
    assert received == [("line", "conv-l")] * 3 + [("conversation", "conv-q"), ("conversation", "conv-l")]
    assert pushes.lines("conv-l") == ["first", "second", "third"]
    (summary,) = pushes.summaries("conv-l")
    assert summary["last_text"] == "third" and summary["language"] == "nl" and summary["channel"] == "socketio"
    (quiet,) = pushes.summaries("conv-q")
    assert quiet["last_text"] is None and quiet["owner"] == "bot"
    assert pending(redis_sync) == []

    # A later batch with nothing visible (actions, slots) pushes nothing.
    xadd(redis_sync, "conv-l", {"event": "action", "name": "action_listen", "timestamp": now})
    xadd(redis_sync, "conv-q", {"event": "slot", "name": "requested_slot", "value": None, "timestamp": now})
    before = len(pushes.collect())
    assert await consumer.step() == 2
    assert len(pushes.collect()) == before
    assert redis_sync.zscore(keys.conversations(), "conv-q") == pytest.approx(now - 30)


@pytest.mark.asyncio
async def test_the_hub_resyncs_its_consoles_when_its_subscription_comes_back(
    redis_sync: sync_redis.Redis, redis_async: Redis,
) -> None:
    """Pushes published while the subscription is away are lost (pub/sub keeps nothing), so a
    console must hear that the hub is back and fetch again; the hub is not live meanwhile."""
    hub = Hub(redis_async)
    console = hub.connect("eva")
    task = asyncio.create_task(hub.run())
    try:
        async def live() -> bool:
            return hub.live
        await eventually(live)
        await hub.publish({"type": "line", "conversation_id": "conv-r", "line": {"text": "before"}})
        assert json.loads(await asyncio.wait_for(console.get(), 5))["line"]["text"] == "before"
        assert console.empty()  # the first subscription is no gap: no resync

        # Redis drops the hub's connection (as when it restarts); the hub subscribes again.
        assert redis_sync.client_kill_filter(_type="pubsub") >= 1
        assert json.loads(await asyncio.wait_for(console.get(), 10)) == {"type": "resync"}
        assert hub.live
        await hub.publish({"type": "line", "conversation_id": "conv-r", "line": {"text": "after"}})
        assert json.loads(await asyncio.wait_for(console.get(), 5))["line"]["text"] == "after"

    finally:
        hub.stopping = True
        await stop_task(task)
        await hub.aclose()
    assert not hub.live
