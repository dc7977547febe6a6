"""Handoff delivery latency: customer → agent console, and agent → customer (web, socket.io).

Starts its own stack (private Redis on a free port, handoff service, actions, Rasa), signs in
an agent with the console's websocket open, and for each of N web customers: escalates, claims,
then times K customer messages until the console's websocket shows them, and K agent replies
until the customer's socket receives them. Prints p50/p95/max and writes results/bench_handoff.json.
As a same-run baseline it times a plain Redis XADD → XREAD round trip on the same Redis.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.clients import Agent, WebCustomer, wait_until  # noqa: E402
from scripts.stack import Stack, free_port, redis_ping  # noqa: E402


def percentiles(values: List[float]) -> Dict[str, float]:
    ordered = sorted(values)
    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50_ms": round(pick(0.50) * 1000, 1), "p95_ms": round(pick(0.95) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1), "mean_ms": round(statistics.mean(ordered) * 1000, 1)}


def redis_baseline(url: str, rounds: int) -> List[float]:
    import redis
    client = redis.Redis.from_url(url)
    stream = f"bench:{uuid.uuid4().hex}"
    last = "$"
    timings = []
    for i in range(rounds):
        start = time.monotonic()
        entry = client.xadd(stream, {"i": i})
        got = client.xread({stream: last if last != "$" else "0"}, block=1000, count=1)
        last = entry
        timings.append(time.monotonic() - start)
        assert got
    client.delete(stream)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10, help="messages each way per customer")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                   "--dir", str(workdir), "--appendonly", "yes", "--save", ""],
                                  stdout=subprocess.DEVNULL)
    wait_until(lambda: redis_ping(redis_url), timeout=10)
    stack = Stack(redis_url=redis_url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  jwt_secret=uuid.uuid4().hex, log_dir=workdir / "logs",
                  extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{workdir / 'helder.db'}"})
    to_console: List[float] = []
    to_customer: List[float] = []
    try:
        stack.start()
        password = uuid.uuid4().hex
        stack.add_agent("bench", "Bench Agent", password)
        agent = Agent(stack.handoff_url, "bench", password)
        agent.open_console_socket()
        for c in range(args.customers):
            customer = WebCustomer(stack.rasa_url, {"locale": "nl"})
            customer.say("ik wil een medewerker spreken")
            case = wait_until(lambda: next((x for x in agent.get("/api/queue").json()
                                            if x["conversation_id"] == customer.sender), None))
            assert agent.post(f"/api/cases/{case['id']}/claim").status_code == 200
            for i in range(args.messages):
                text = f"bericht {c}-{i} {uuid.uuid4().hex[:6]}"
                seen = len(agent.pushed)
                start = time.monotonic()
                customer.say(text, quiet=0, expect_reply=False)
                wait_until(lambda: any(p.get("type") == "line" and p["line"].get("text") == text
                                       for p in agent.pushed[seen:]), interval=0.002)
                index = next(i2 for i2 in range(seen, len(agent.pushed))
                             if agent.pushed[i2].get("type") == "line" and agent.pushed[i2]["line"].get("text") == text)
                to_console.append(agent.pushed_at[index] - start)

                reply = f"antwoord {c}-{i} {uuid.uuid4().hex[:6]}"
                received = len(customer.received)
                start = time.monotonic()
                assert agent.post(f"/api/cases/{case['id']}/messages", {"text": reply}).status_code == 200
                wait_until(lambda: reply in customer.texts()[received:], interval=0.002)
                index = received + customer.texts()[received:].index(reply)
                to_customer.append(customer.received_at[index] - start)
            agent.post(f"/api/cases/{case['id']}/resolve", {"outcome": "bench"})
            customer.close()
        agent.close()
        baseline = redis_baseline(redis_url, 200)
    finally:
        stack.stop()
        redis_proc.terminate()
        redis_proc.wait()
    report = {
        "customer_to_console": percentiles(to_console),
        "agent_to_customer_web": percentiles(to_customer),
        "baseline_redis_stream_roundtrip": percentiles(baseline),
        "customers": args.customers, "messages_each_way": args.messages,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = ROOT / "results" / "bench_handoff.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for name in ("customer_to_console", "agent_to_customer_web", "baseline_redis_stream_roundtrip"):
        r = report[name]
        print(f"{name:34s} n={r['n']:4d}  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
