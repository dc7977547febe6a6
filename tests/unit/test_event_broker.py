"""The event broker writes every event to the Redis Stream, in order, batched inside the loop."""

import asyncio
import json
import time
import urllib.parse

import redis

from bot.event_broker import RedisStreamEventBroker


def _broker(redis_url, stream):
    parsed = urllib.parse.urlparse(redis_url)
    return RedisStreamEventBroker(host=parsed.hostname, port=parsed.port, db=0, stream=stream)


def _stream(redis_url, stream):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [(fields["sender_id"], json.loads(fields["event"])) for _, fields in client.xrange(stream)]


def test_events_of_a_turn_go_out_together_and_in_order(redis_url):
    broker = _broker(redis_url, "test:turn")
    events = [{"sender_id": "c1", "event": "user", "text": "waar is mijn pakket"},
              {"sender_id": "c1", "event": "action", "name": "action_observe_turn"},
              {"sender_id": "c2", "event": "user", "text": "hello"},
              {"sender_id": "c1", "event": "bot", "text": "Uw pakket is onderweg."}]

    async def turn():
        for event in events:
            broker.publish(event)
        written_before_yield = len(_stream(redis_url, "test:turn"))
        await asyncio.sleep(0)  # the saving coroutine yields: the batch is written
        return written_before_yield

    assert asyncio.run(turn()) == 0
    assert _stream(redis_url, "test:turn") == [(e["sender_id"], e) for e in events]


def test_a_reader_blocked_on_the_stream_gets_the_whole_turn_in_one_read(redis_url):
    """The handoff service reads with a blocking XREADGROUP: woken by the first event of a plain
    pipeline, it read a turn in pieces; the turn's transaction wakes it once, with every event."""
    import threading

    broker = _broker(redis_url, "test:whole-turn")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.xgroup_create("test:whole-turn", "readers", id="0", mkstream=True)
    reads = []
    reader = threading.Thread(target=lambda: reads.append(redis.Redis.from_url(redis_url).xreadgroup(
        "readers", "r1", {"test:whole-turn": ">"}, count=100, block=5000)))
    reader.start()
    deadline = time.monotonic() + 5  # the reader is blocked before the turn is written
    while not any(c.get("cmd") == "xreadgroup" for c in client.client_list()) and time.monotonic() < deadline:
        time.sleep(0.01)

    async def turn():
        for i in range(15):
            broker.publish({"sender_id": "c1", "event": "slot", "name": f"s{i}", "value": i})
        await asyncio.sleep(0)

    asyncio.run(turn())
    reader.join(timeout=5)
    assert [len(entries) for _, entries in reads[0]] == [15]


def test_outside_an_event_loop_each_event_is_written_at_once(redis_url):
    broker = _broker(redis_url, "test:sync")
    broker.publish({"sender_id": "c3", "event": "user", "text": "hallo"})
    assert _stream(redis_url, "test:sync") == [("c3", {"sender_id": "c3", "event": "user", "text": "hallo"})]


def test_redis_gone_is_logged_not_raised(caplog):
    from scripts.stack import free_port

    broker = RedisStreamEventBroker(host="127.0.0.1", port=free_port(), socket_timeout=0.2)

    async def turn():
        broker.publish({"sender_id": "c4", "event": "user", "text": "hallo"})
        await asyncio.sleep(0)

    asyncio.run(turn())
    assert "could not publish 1 event(s) (user)" in caplog.text
    assert broker._pending == []


def test_a_lone_surrogate_does_not_lose_the_turn(redis_url):
    broker = _broker(redis_url, "test:surrogate")
    events = [{"sender_id": "c5", "event": "user", "text": "hallo \ud83d daar"},
              {"sender_id": "c5", "event": "bot", "text": "Waarmee kan ik u helpen?"}]

    async def turn():
        for event in events:
            broker.publish(event)
        await asyncio.sleep(0)

    asyncio.run(turn())
    written = _stream(redis_url, "test:surrogate")
    assert [e["event"] for _, e in written] == ["user", "bot"]
    assert written[0][1]["text"].startswith("hallo ") and written[0][1]["text"].endswith(" daar")
    assert "\ud83d" not in written[0][1]["text"]
