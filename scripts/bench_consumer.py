"""CPU per tracker event of the handoff service's stream consumer (handoff/consumer.py).

Starts a private redis-server on a free port, XADDs realistic tracker events (the shape Rasa's
event broker writes, bot/event_broker.py: fields ``sender_id`` and ``event`` = the event as JSON)
for ~50 conversations, then runs :class:`EventConsumer` over them with a real Store and Hub (the
Hub running, with one console socket being drained, as when an agent is signed in) and reports CPU
milliseconds per event (``time.process_time`` of this process) and events per second.

``--baseline REF`` also runs the consumer as it is at a git revision (its handoff/consumer.py,
loaded from git, with today's store), alternating with the working tree's, so both figures come
from the same run on the same machine. Each run also prints a digest of what ends up in Redis and
of what the console received (lines in order per conversation, last summary per conversation):
equal digests mean the change did not change what agents see.

By default all events are in the stream before the consumer starts (a backlog: full batches).
``--live TURNS_PER_S`` instead has another process XADD them while the consumer runs, a turn at a
time in one MULTI/EXEC round trip like the assistant's broker (bot/event_broker.py; ``--one-xadd-each``:
one round trip per event, as Rasa's own brokers do), so batches are as small as in real traffic.

Usage (handoff environment)::

    PYTHONPATH=. .venv-handoff/bin/python scripts/bench_consumer.py --events 10000 --baseline 7c14794
    PYTHONPATH=. .venv-handoff/bin/python scripts/bench_consumer.py --events 3000 --live 20 --baseline 7c14794
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Dict, List, Tuple

import redis as sync_redis
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contract import keys  # noqa: E402
from handoff.settings import Settings  # noqa: E402
from handoff.store import Store  # noqa: E402
from scripts.stack import RedisServer  # noqa: E402

BASE_TS = 1_714_557_600.0
MODEL = {"model_id": "5c0a7e7f0e3c4b5d9d4f0b1f2a3c4d5e", "assistant_id": "support-assistant"}
INTENTS = ["order_status", "return_item", "change_contact_details", "greet", "human_handoff",
           "out_of_scope", "affirm", "deny", "thank_you", "delivery_time"]
TEXTS = {
    "nl": ["Waar blijft mijn pakket?", "Ik wil mijn bestelling retourneren", "mijn ordernummer is 2024118832",
           "ja graag", "nee dank je", "Kan ik met een medewerker praten?", "Dank u wel!",
           "Wanneer wordt het bezorgd?", "mijn adres is veranderd"],
    "en": ["Where is my parcel?", "I want to return my order", "my order number is 2024118999",
           "yes please", "no thanks", "Can I talk to a person?", "Thanks a lot!",
           "When will it be delivered?", "I moved, new address"],
}
REPLIES = {
    "nl": ["Ik zoek het voor u op.", "Uw pakket is onderweg en komt morgen aan.", "Wat is uw ordernummer?",
           "Kan ik u nog ergens anders mee helpen?", "Ik verbind u door met een medewerker."],
    "en": ["Let me check that for you.", "Your parcel is on its way and arrives tomorrow.",
           "What is your order number?", "Is there anything else I can help with?",
           "I will connect you with a colleague."],
}
SLOTS = ["order_number", "problem_description", "requested_slot", "verified", "customer_id", "intent_history"]


# --- events ----------------------------------------------------------------------------------------

def _action(sender: str, ts: float, name: str, rng: random.Random) -> Dict[str, Any]:
    return {"event": "action", "timestamp": ts, "metadata": dict(MODEL), "name": name,
            "policy": rng.choice(["RulePolicy", "TEDPolicy", "MemoizationPolicy"]),
            "confidence": round(rng.uniform(0.6, 1.0), 4), "action_text": None, "hide_rule_turn": False,
            "sender_id": sender}


def _slot(sender: str, ts: float, name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "timestamp": ts, "metadata": dict(MODEL), "name": name, "value": value,
            "sender_id": sender}


def _turn(sender: str, ts: float, first: bool, language: str, channel: str, rng: random.Random,
          message_no: int) -> List[Dict[str, Any]]:
    """One customer turn the way Rasa's tracker publishes it (about 10-20 events)."""
    events: List[Dict[str, Any]] = []
    tick = iter(ts + 0.001 * step for step in range(100))
    if first:
        events.append(_action(sender, next(tick), "action_session_start", rng))
        events.append({"event": "session_started", "timestamp": next(tick), "metadata": dict(MODEL),
                       "sender_id": sender})
        events.append(_action(sender, next(tick), "action_listen", rng))
    text = rng.choice(TEXTS[language])
    intent = rng.choice(INTENTS)
    message_id = hashlib.md5(f"{sender}-{message_no}".encode()).hexdigest()
    ranking = [{"name": name, "confidence": round(rng.random(), 6)} for name in rng.sample(INTENTS, 10)]
    events.append({
        "event": "user", "timestamp": next(tick),
        "metadata": {"language": language, "page": "https://shop.example/orders"} if channel == "socketio" else {},
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": ranking[0]["confidence"]},
                       "entities": [{"entity": "order_number", "start": 0, "end": 10, "value": "2024118832",
                                     "extractor": "RegexEntityExtractor"}] if rng.random() < 0.3 else [],
                       "text": text, "message_id": message_id, "metadata": {}, "language": language,
                       "intent_ranking": ranking,
                       "response_selector": {"all_retrieval_intents": [], "default": {
                           "response": {"responses": None, "confidence": 0.0, "intent_response_key": None,
                                        "utter_action": "utter_None"}, "ranking": []}}},
        "input_channel": channel, "message_id": message_id, "sender_id": sender,
    })
    events.append({"event": "user_featurization", "timestamp": next(tick), "metadata": dict(MODEL),
                   "use_text_for_featurization": False, "sender_id": sender})
    if first or rng.random() < 0.2:
        events.append(_slot(sender, next(tick), "language", language))
    events.append(_action(sender, next(tick), f"action_{intent}", rng))
    for name in rng.sample(SLOTS, rng.randint(2, 5)):
        events.append(_slot(sender, next(tick), name, rng.choice([None, True, "2024118832", "parcel lost"])))
    for _ in range(rng.randint(1, 2)):
        utter = f"utter_{intent}"
        events.append(_action(sender, next(tick), utter, rng))
        events.append({"event": "bot", "timestamp": next(tick), "metadata": {"utter_action": utter, **MODEL},
                       "text": rng.choice(REPLIES[language]),
                       "data": {"elements": None, "quick_replies": None, "buttons": None, "attachment": None,
                                "image": None, "custom": None}, "sender_id": sender})
    events.append(_action(sender, next(tick), "action_listen", rng))
    return events


def tracker_turns(count: int, conversations: int, seed: int) -> List[List[Tuple[str, str]]]:
    """Turns of ``conversations`` customers, interleaved, with ``count`` (or a few more) stream
    entries ``(sender_id, event JSON)`` in all."""
    rng = random.Random(seed)
    people = [(f"conv-{index:03d}-{rng.getrandbits(32):08x}", rng.choice(["nl", "en"]),
               rng.choice(["socketio", "socketio", "whatsapp", "rest"])) for index in range(conversations)]
    turns = {sender: 0 for sender, _, _ in people}
    found: List[List[Tuple[str, str]]] = []
    total, clock = 0, BASE_TS
    while total < count:
        sender, language, channel = rng.choice(people)
        clock += rng.uniform(0.05, 2.0)
        turn = [(sender, json.dumps(event, ensure_ascii=False, default=str))
                for event in _turn(sender, clock, turns[sender] == 0, language, channel, rng, turns[sender])]
        found.append(turn)
        total += len(turn)
        turns[sender] += 1
    return found


def tracker_events(count: int, conversations: int, seed: int) -> List[Tuple[str, str]]:
    """The entries of :func:`tracker_turns` in stream order."""
    return [entry for turn in tracker_turns(count, conversations, seed) for entry in turn]


def entry_id(index: int) -> str:
    """Fixed ids (as if all came in the same millisecond) so the line keys, and the digests, repeat."""
    return f"{int(BASE_TS * 1000)}-{index + 1}"


# --- redis -----------------------------------------------------------------------------------------

def load_entries(url: str, entries: List[Tuple[str, str]]) -> None:
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for index, (sender, event) in enumerate(entries):
        pipe.xadd(keys.EVENTS_STREAM, {"sender_id": sender, "event": event}, id=entry_id(index))
        if index % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.close()


def produce(url: str, turns: List[List[Tuple[str, str]]], rate: float, one_each: bool) -> None:
    """Like the assistant's broker during conversations, ``rate`` turns/s: a turn's events in one
    MULTI/EXEC round trip (bot/event_broker.py), or with ``one_each`` one XADD round trip each."""
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    index, started = 0, time.monotonic()
    for number, turn in enumerate(turns):
        pause = started + number / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        pipe = client.pipeline(transaction=True)
        for sender, event in turn:
            (client if one_each else pipe).xadd(keys.EVENTS_STREAM, {"sender_id": sender, "event": event},
                                                id=entry_id(index))
            index += 1
        if not one_each:
            pipe.execute()
    client.close()


def state_digest(url: str) -> str:
    """What the consumer left in Redis: the live index, the summaries and the transcripts."""
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    state: Dict[str, Any] = {"index": client.zrange(keys.conversations(), 0, -1, withscores=True)}
    for conversation_id, _ in state["index"]:
        state[conversation_id] = {
            "meta": client.hgetall(keys.conversation(conversation_id)),
            "order": client.zrange(keys.transcript(conversation_id), 0, -1, withscores=True),
            "lines": client.hgetall(keys.transcript_lines(conversation_id)),
        }
    state["pending"] = client.xpending(keys.EVENTS_STREAM, keys.EVENTS_GROUP)["pending"]
    client.close()
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


# --- the consumer under test -----------------------------------------------------------------------

def consumer_module(ref: str | None) -> types.ModuleType:
    """handoff.consumer from the working tree, or as it is at git revision ``ref``."""
    if ref is None:
        import handoff.consumer as current
        return current
    source = subprocess.run(["git", "show", f"{ref}:handoff/consumer.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    name = f"handoff_consumer_at_{ref.replace('~', '_').replace('^', '_')}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None  # a spec without a loader is always made
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"{ref}:handoff/consumer.py", "exec"), module.__dict__)  # noqa: S102 - our own repo
    return module


async def run_once(module: types.ModuleType, url: str, count: int, console: bool,
                   producer: List[str] | None = None, linger_ms: float | None = None) -> Dict[str, Any]:
    redis = Redis.from_url(url, decode_responses=True, socket_timeout=5.0)
    store = Store(redis, Settings(env="local", redis_url=url))
    hub = module.Hub(redis)
    options = {} if linger_ms is None else {"linger_ms": linger_ms}
    consumer = module.EventConsumer(redis, store, hub, name="bench", block_ms=200, **options)
    await consumer.ensure_group()
    received: List[Dict[str, Any]] = []
    tasks: List[asyncio.Task] = []
    if console:
        await hub.start()
        queue = hub.connect("eva")
        tasks.append(asyncio.create_task(hub.run()))

        async def drain() -> None:
            while True:
                data = await queue.get()
                received.append(json.loads(data))
        tasks.append(asyncio.create_task(drain()))
    await asyncio.sleep(0.1)

    process = subprocess.Popen(producer) if producer else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    handled = batches = 0
    while handled < count:
        done = await consumer.step()
        handled += done
        batches += 1 if done else 0
    wall = time.perf_counter() - wall0
    if process:
        process.wait(timeout=60)
    # The pushes still on their way through pub/sub are part of the work.
    if console:
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 0.3:
            if len(received) != seen:
                seen, quiet_since = len(received), time.monotonic()
            await asyncio.sleep(0.02)
    cpu = time.process_time() - cpu0

    hub.stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await hub.aclose()
    await redis.aclose()

    lines: Dict[str, List[Any]] = {}
    summaries: Dict[str, Any] = {}
    for push in received:
        if push["type"] == "line":
            lines.setdefault(push["conversation_id"], []).append(push["line"])
        elif push["type"] == "conversation":
            summaries[push["conversation"]["conversation_id"]] = push["conversation"]
    pushes = {"line": sum(len(v) for v in lines.values()), "conversation": len(received) - sum(len(v) for v in lines.values())}
    console_digest = hashlib.sha256(json.dumps([lines, summaries], sort_keys=True).encode()).hexdigest()[:16]
    return {"cpu_ms_per_event": cpu * 1000 / count, "events_per_s": count / wall, "pushes": pushes,
            "events_per_batch": count / max(1, batches),
            "console": console_digest if console else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10000, help="stream entries per run (default 10000)")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the median is reported")
    parser.add_argument("--baseline", metavar="REF", help="also run handoff/consumer.py as of this git revision")
    parser.add_argument("--no-console", action="store_true", help="no Hub subscription/socket (consumer only)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live", metavar="TURNS_PER_S", type=float,
                        help="events come in while the consumer runs, a turn at a time, from another process "
                             "(like the assistant's broker) instead of all being there first")
    parser.add_argument("--one-xadd-each", action="store_true",
                        help="with --live: one XADD round trip per event (the broker before 23da784) instead "
                             "of one MULTI/EXEC round trip per turn")
    parser.add_argument("--linger-ms", type=float,
                        help="EventConsumer(linger_ms=...) for the working tree (default: its default)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--produce", metavar="REDIS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()

    turns = tracker_turns(args.events, args.conversations, args.seed)
    if args.produce:
        produce(args.produce, turns, args.live, args.one_xadd_each)
        return
    entries = [entry for turn in turns for entry in turn]
    count = len(entries)
    kinds: Dict[str, int] = {}
    for _, event in entries:
        kind = json.loads(event)["event"]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{count} events in {len(turns)} turns of {args.conversations} conversations: {kinds}")

    variants = [("working tree", None)] + ([(f"at {args.baseline}", args.baseline)] if args.baseline else [])
    modules = {label: consumer_module(ref) for label, ref in variants}
    results: Dict[str, List[Dict[str, Any]]] = {label: [] for label, _ in variants}
    redis_dir = Path(tempfile.mkdtemp(prefix="bench-consumer-redis-"))
    server = RedisServer(redis_dir)
    try:
        for round_no in range(args.repeat):
            for label, _ in (variants if round_no % 2 == 0 else variants[::-1]):
                producer = None
                if args.live:
                    load_entries(server.url, [])
                    producer = [sys.executable, str(Path(__file__).resolve()), "--produce", server.url,
                                "--live", str(args.live), "--events", str(args.events),
                                "--conversations", str(args.conversations), "--seed", str(args.seed)]
                    producer += ["--one-xadd-each"] if args.one_xadd_each else []
                else:
                    load_entries(server.url, entries)
                linger = args.linger_ms if modules[label] is modules["working tree"] else None
                result = asyncio.run(run_once(modules[label], server.url, count, not args.no_console, producer,
                                              linger))
                result["redis"] = state_digest(server.url)
                results[label].append(result)
                print(f"  run {round_no + 1} {label:>16}: {result['cpu_ms_per_event']:.3f} CPU ms/event, "
                      f"{result['events_per_s']:.0f} events/s, {result['events_per_batch']:.1f} events/batch, "
                      f"pushes {result['pushes']}, "
                      f"redis {result['redis']}, console {result['console']}")
    finally:
        server.stop()
        shutil.rmtree(redis_dir, ignore_errors=True)

    summary = {}
    for label, runs in results.items():
        summary[label] = {
            "cpu_ms_per_event": round(statistics.median(r["cpu_ms_per_event"] for r in runs), 4),
            "events_per_s": round(statistics.median(r["events_per_s"] for r in runs)),
            "cpu_ms_per_turn": round(statistics.median(r["cpu_ms_per_event"] for r in runs) * count / len(turns), 3),
            "events_per_batch": round(statistics.median(r["events_per_batch"] for r in runs), 1),
            "redis_digests": sorted({r["redis"] for r in runs}),
            "console_digests": sorted({r["console"] for r in runs if r["console"]}),
        }
        print(f"{label:>16}: median {summary[label]['cpu_ms_per_event']:.3f} CPU ms/event, "
              f"{summary[label]['cpu_ms_per_turn']:.2f} CPU ms/turn, {summary[label]['events_per_s']} events/s"
              + (" (the offered rate)" if args.live else ""))
    if args.baseline:
        new, old = summary["working tree"], summary[f"at {args.baseline}"]
        print(f"CPU per event: {old['cpu_ms_per_event'] / new['cpu_ms_per_event']:.1f}x less; "
              f"throughput {new['events_per_s'] / old['events_per_s']:.1f}x; same Redis state: "
              f"{new['redis_digests'] == old['redis_digests']}; same console view: "
              f"{new['console_digests'] == old['console_digests']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"events": count, "turns": len(turns), "live_turns_per_s": args.live,
                                               "one_xadd_each": args.one_xadd_each, "linger_ms": args.linger_ms,
                                               "conversations": args.conversations,
                                               "kinds": kinds, "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
