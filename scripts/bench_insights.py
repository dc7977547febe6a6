"""What the insights aggregation costs: CPU per event, and turn latency with it on and off.

Starts the real stack once (private redis-server, Rasa with the model of ``scripts/model.py``, the
action server, the handoff service) and then alternates the handoff service between
``HANDOFF_INSIGHTS=1`` and ``HANDOFF_INSIGHTS=0`` (restarting only that process), running the same
REST conversations in each round, so both figures come from the same run on the same machine:

- turn latency over REST (what a customer waits for), p50/p95/p99 per mode;
- the handoff service's CPU per stream event (its whole process, ``/proc``), per mode;
- the aggregation's own CPU per event (``helder_handoff_insights_cpu_seconds_total`` at
  ``/metrics`` divided by the events the consumer read).

Usage (bot environment; pin a model with KLANTCONTACT_MODEL so nothing trains)::

    KLANTCONTACT_MODEL=/path/model.tar.gz PYTHONPATH=. .venv/bin/python scripts/bench_insights.py --rounds 3 --conversations 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contract import keys  # noqa: E402
from scripts.benchlib import cpu_seconds, machine, percentiles  # noqa: E402
from scripts.model import ensure_model  # noqa: E402
from scripts.stack import RedisServer, Stack, free_port  # noqa: E402

SCRIPTS = [
    ["waar blijft mijn bestelling nou", "48213377", "3511 AB", "bedankt"],
    ["where is my order", "60418825", "SW1A 1AA", "thanks"],
    ["mijn internet doet het al de hele ochtend niet", "39481726", "3581 KP"],
    ["forgot my password and cant log in", "emily.clarke@example.co.uk", "SW1A 1AA"],
    ["ik wil een medewerker spreken", "hallo?"],
]
METRICS_TOKEN = "bench-metrics-" + uuid.uuid4().hex


def turn(session: requests.Session, url: str, sender: str, text: str) -> float:
    started = time.perf_counter()
    response = session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def consumer_read(client: redis.Redis) -> int:
    """Entries the live consumer group has read so far (Redis 7: ``entries-read``)."""
    for group in client.xinfo_groups(keys.EVENTS_STREAM):
        if group["name"] == keys.EVENTS_GROUP:
            return int(group.get("entries-read") or 0)
    return 0


def settle(client: redis.Redis, timeout: float = 30) -> None:
    """Until every consumer group (live and insights) has read and acknowledged everything."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        groups = client.xinfo_groups(keys.EVENTS_STREAM)
        if groups and all(not g["pending"] and not g["lag"] for g in groups):
            return
        time.sleep(0.1)


def insights_cpu(stack: Stack) -> float:
    text = requests.get(f"{stack.handoff_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                        timeout=10).text
    for line in text.splitlines():
        if line.startswith("helder_handoff_insights_cpu_seconds_total "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=8, help="per round and mode")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-insights-"))
    server = RedisServer(work / "redis")
    stack = Stack(redis_url=server.url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  web_port=free_port(), model=ensure_model(), jwt_secret=uuid.uuid4().hex, log_dir=work / "logs",
                  extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{work / 'helder.db'}",
                             "HANDOFF_METRICS_TOKEN": METRICS_TOKEN, "HANDOFF_INSIGHTS": "1"})
    client = redis.Redis.from_url(server.url, decode_responses=True)
    latencies: Dict[str, List[float]] = {"on": [], "off": []}
    per_round: List[Dict[str, float]] = []
    service_cpu: Dict[str, float] = {"on": 0.0, "off": 0.0}
    events: Dict[str, int] = {"on": 0, "off": 0}
    aggregation_cpu = 0.0
    try:
        stack.start()
        with requests.Session() as session:
            for _ in range(2):  # warm-up: first turns load caches
                for text in SCRIPTS[0]:
                    turn(session, stack.rasa_url, f"warm-{uuid.uuid4().hex}", text)
            for round_number in range(args.rounds):
                for mode in (("on", "off") if round_number % 2 == 0 else ("off", "on")):
                    stack.stop_process("handoff")
                    stack.extra_env["HANDOFF_INSIGHTS"] = "1" if mode == "on" else "0"
                    stack.start_handoff()
                    settle(client)
                    pid = stack.processes["handoff"].pid
                    cpu_before, read_before = cpu_seconds(pid), consumer_read(client)
                    segment: List[float] = []
                    for index in range(args.conversations):
                        sender = f"bench-{mode}-{uuid.uuid4().hex}"
                        for text in SCRIPTS[index % len(SCRIPTS)]:
                            segment.append(turn(session, stack.rasa_url, sender, text))
                    latencies[mode] += segment
                    while len(per_round) <= round_number:
                        per_round.append({})
                    per_round[round_number][f"{mode}_p50_ms"] = percentiles(segment)["p50_ms"]
                    settle(client)
                    time.sleep(0.5)
                    service_cpu[mode] += cpu_seconds(pid) - cpu_before
                    events[mode] += consumer_read(client) - read_before
                    if mode == "on":
                        aggregation_cpu += insights_cpu(stack)
    finally:
        stack.stop()
        client.close()
        server.stop()

    result: Dict[str, Any] = {
        "machine": machine(),
        "rounds": args.rounds, "conversations_per_round_and_mode": args.conversations,
        "turn_latency": {mode: percentiles(values) for mode, values in latencies.items()},
        "turn_latency_p50_per_round": per_round,
        "handoff_service_cpu_ms_per_event": {mode: round(1000 * service_cpu[mode] / max(1, events[mode]), 3)
                                             for mode in events},
        "events": events,
        "aggregation_cpu_ms_per_event": round(1000 * aggregation_cpu / max(1, events["on"]), 3),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
