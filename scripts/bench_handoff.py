"""Handoff delivery latency, web and WhatsApp: customer → agent console, and agent → customer.

Starts its own stack (private Redis on a free port, handoff service, actions, Rasa) with its
WhatsApp channel pointed at a fake Graph API on loopback (scripts/fake_graph_api.py), signs in
an agent with the console's websocket open, and times four legs:

- ``customer_to_console_web``: a web customer's message (socket.io ``user_uttered`` over a
  websocket, as the widget sends once connected) until the console's websocket shows the line;
- ``agent_to_customer_web``: an agent reply (``POST /api/cases/{id}/messages``) until the
  customer's socket receives it;
- ``customer_to_console_whatsapp``: a WhatsApp message (a signed webhook delivery POSTed to
  Rasa, as Meta sends it; fresh message id, current timestamp) until the console shows the line;
- ``agent_to_customer_whatsapp``: an agent reply until the fake Graph API receives it;
- the two web legs again with the customer on HTTP long-polling (``*_web_polling``), socket.io's
  fallback where a proxy blocks websockets (reported; the target is on the four legs above), only
  with one Rasa process: long-polling needs sticky sessions, which worker processes sharing one
  port do not have (the README says so).

For each of N customers per channel: escalate, claim, then K messages each way, one at a
time. Every time is taken on this process's monotonic clock, from just before the send to the
moment the receiving thread got it (console websocket, socket.io client, fake Graph API).

Same-run baselines, to read the figures against this machine's floor:
``baseline_redis_stream_roundtrip`` (XADD → XREAD on the same Redis) and
``baseline_http_post_roundtrip_fake_graph`` (a plain HTTP POST to the fake Graph API and its
answer, from this process). Target: p95 ≤ 50 ms for every leg.
Prints p50/p95/max and writes results/bench_handoff.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.clients import Agent, WebCustomer, wait_until  # noqa: E402
from scripts.fake_graph_api import FakeGraphAPI, replies_after  # noqa: E402
from scripts.benchlib import percentiles  # noqa: E402
from scripts.stack import DEFAULT_RASA_WORKERS, RedisServer, Stack, free_port  # noqa: E402
from scripts.whatsapp_customer import PHONE_NUMBER_ID, WhatsAppCustomer  # noqa: E402

TARGET_P95_MS = 50.0
LEGS = ("customer_to_console_web", "agent_to_customer_web",
        "customer_to_console_whatsapp", "agent_to_customer_whatsapp")
#: The web legs again over HTTP long-polling (socket.io's fallback where a proxy blocks websockets).
POLLING_LEGS = ("customer_to_console_web_polling", "agent_to_customer_web_polling")
BASELINES = ("baseline_redis_stream_roundtrip", "baseline_http_post_roundtrip_fake_graph")
POLL = 0.002  # seconds between checks; the times themselves come from the receiving threads


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


def http_post_baseline(graph: FakeGraphAPI, access_token: str, rounds: int) -> List[float]:
    """A plain HTTP POST of a text message to the fake Graph API and its answer (a new TCP
    connection each time, as the fake speaks HTTP/1.0, like the channel's own sends to it)."""
    import requests

    url = f"{graph.url}/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {access_token}"}
    to = "0000000000"  # nobody the benchmark's customers use
    timings = []
    for i in range(rounds):
        body = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": f"baseline {i}"}}
        start = time.monotonic()
        response = requests.post(url, json=body, headers=headers, timeout=10)
        timings.append(time.monotonic() - start)
        assert response.status_code == 200, response.text
    return timings


def console_line_at(agent: Agent, seen: int, conversation_id: str, text: str) -> float:
    """When the console's websocket got the line ``text`` of ``conversation_id`` (pushed after ``seen``)."""
    def index() -> Optional[int]:
        for i in range(seen, len(agent.pushed)):
            push = agent.pushed[i]
            if (push.get("type") == "line" and push.get("conversation_id") == conversation_id
                    and push["line"].get("text") == text):
                return i + 1  # truthy for wait_until even at index 0
        return None
    return agent.pushed_at[wait_until(index, interval=POLL) - 1]


def claim_case(agent: Agent, conversation_id: str) -> Dict[str, Any]:
    case = wait_until(lambda: next((x for x in agent.get("/api/queue").json()
                                    if x["conversation_id"] == conversation_id), None))
    response = agent.post(f"/api/cases/{case['id']}/claim")
    assert response.status_code == 200, response.text
    return case


def reply(agent: Agent, case: Dict[str, Any], text: str) -> None:
    response = agent.post(f"/api/cases/{case['id']}/messages", {"text": text})
    assert response.status_code == 200, response.text


def bench_web(stack: Stack, agent: Agent, customers: int, messages: int,
              to_console: List[float], to_customer: List[float], transport: str = "websocket") -> None:
    for c in range(customers):
        customer = WebCustomer(stack.rasa_url, {"locale": "nl"}, transport=transport)
        try:
            customer.say("ik wil een medewerker spreken")
            case = claim_case(agent, customer.sender)
            for i in range(messages):
                text = f"bericht web {c}-{i} {uuid.uuid4().hex[:6]}"
                seen = len(agent.pushed)
                start = time.monotonic()
                customer.say(text, quiet=0, expect_reply=False)
                to_console.append(console_line_at(agent, seen, customer.sender, text) - start)

                answer = f"antwoord web {c}-{i} {uuid.uuid4().hex[:6]}"
                received = len(customer.received)
                start = time.monotonic()
                reply(agent, case, answer)
                wait_until(lambda: answer in customer.texts()[received:], interval=POLL)  # noqa: B023 (called in this iteration)
                index = received + customer.texts()[received:].index(answer)
                to_customer.append(customer.received_at[index] - start)
            agent.post(f"/api/cases/{case['id']}/resolve", {"outcome": "bench"})
        finally:
            customer.close()


def bench_whatsapp(stack: Stack, agent: Agent, graph: FakeGraphAPI, app_secret: str, customers: int,
                   messages: int, to_console: List[float], to_customer: List[float]) -> None:
    for c in range(customers):
        # A fresh number each run (+3197 is the Dutch M2M range: no demo customer has one), so
        # neither the dedupe of message ids nor an old conversation of an earlier run is in play.
        wa_id = "3197" + "".join(random.choice("0123456789") for _ in range(8))
        customer = WhatsAppCustomer(stack.rasa_url, app_secret, wa_id, name=f"Bench {c}")
        customer.say("ik wil een medewerker spreken")
        replies_after(graph, wa_id, 0, quiet=1.0)  # the bot's handoff turn is over
        case = claim_case(agent, wa_id)
        for i in range(messages):
            text = f"bericht whatsapp {c}-{i} {uuid.uuid4().hex[:6]}"
            seen = len(agent.pushed)
            start = time.monotonic()
            customer.say(text)  # the webhook answers 200 at once; the turn runs in the background
            to_console.append(console_line_at(agent, seen, wa_id, text) - start)

            answer = f"antwoord whatsapp {c}-{i} {uuid.uuid4().hex[:6]}"
            start = time.monotonic()
            reply(agent, case, answer)
            received = wait_until(lambda: graph.sent_text(wa_id, answer), interval=POLL)  # noqa: B023 (called in this iteration)
            to_customer.append(received.received_at - start)
        agent.post(f"/api/cases/{case['id']}/resolve", {"outcome": "bench"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5, help="customers per channel")
    parser.add_argument("--messages", type=int, default=10, help="messages each way per customer")
    parser.add_argument("--model", type=Path, default=None,
                        help="the trained model to run (default: scripts/model.py's, training it if needed)")
    parser.add_argument("--rasa-workers", type=int, default=DEFAULT_RASA_WORKERS,
                        help="processes serving Rasa's port, as make run starts it (default %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_handoff.json")
    args = parser.parse_args()
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {args.model}: no such file")

    workdir = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    redis_server = RedisServer(workdir / "redis")
    redis_url = redis_server.url
    app_secret = uuid.uuid4().hex
    access_token = "EAAG" + uuid.uuid4().hex
    graph = FakeGraphAPI(access_token=access_token).start()
    stack = Stack(redis_url=redis_url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  model=args.model.resolve() if args.model else None,
                  jwt_secret=uuid.uuid4().hex, log_dir=workdir / "logs", rasa_workers=args.rasa_workers,
                  extra_env={
                      "KLANTCONTACT_DB_URL": f"sqlite:///{workdir / 'helder.db'}",
                      "WHATSAPP_VERIFY_TOKEN": uuid.uuid4().hex,
                      "WHATSAPP_APP_SECRET": app_secret,
                      "WHATSAPP_ACCESS_TOKEN": access_token,
                      "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
                      "WHATSAPP_GRAPH_API_URL": graph.url,
                  })
    timings: Dict[str, List[float]] = {name: [] for name in LEGS + POLLING_LEGS + BASELINES}
    load_before = os.getloadavg()[0]
    try:
        stack.start()
        password = uuid.uuid4().hex
        stack.add_agent("bench", "Bench Agent", password)
        agent = Agent(stack.handoff_url, "bench", password)
        agent.open_console_socket()
        try:
            bench_web(stack, agent, args.customers, args.messages,
                      timings["customer_to_console_web"], timings["agent_to_customer_web"])
            bench_whatsapp(stack, agent, graph, app_secret, args.customers, args.messages,
                           timings["customer_to_console_whatsapp"], timings["agent_to_customer_whatsapp"])
            if args.rasa_workers == 1:  # long-polling needs sticky sessions, which workers on one port lack
                bench_web(stack, agent, args.customers, args.messages, timings["customer_to_console_web_polling"],
                          timings["agent_to_customer_web_polling"], transport="polling")
        finally:
            agent.close()
        timings["baseline_redis_stream_roundtrip"] = redis_baseline(redis_url, 200)
        timings["baseline_http_post_roundtrip_fake_graph"] = http_post_baseline(graph, access_token, 200)
    except BaseException:
        print(f"benchmark failed; the servers' logs are in {workdir / 'logs'}", file=sys.stderr)
        raise
    finally:
        stack.stop()
        graph.stop()
        redis_server.stop()

    report: Dict[str, Any] = {}
    for name in LEGS:
        figures = percentiles(timings[name])
        figures["target_p95_ms"] = TARGET_P95_MS
        figures["meets_target"] = figures["p95_ms"] <= TARGET_P95_MS
        report[name] = figures
    for name in POLLING_LEGS + BASELINES:
        if timings[name]:
            report[name] = percentiles(timings[name])
    # Other work on the machine shows up in every leg (not much in the baselines): keep the load.
    report.update({"customers": args.customers, "messages_each_way": args.messages, "rasa_workers": args.rasa_workers,
                   "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
                   "cpus": os.cpu_count()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    for name in [leg for leg in LEGS + POLLING_LEGS + BASELINES if leg in report]:
        r = report[name]
        line = (f"{name:40s} n={r['n']:4d}  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms"
                f"  max {r['max_ms']:7.1f} ms")
        if name in LEGS:
            line += f"  (target p95 ≤ {TARGET_P95_MS:.0f} ms: {'ok' if r['meets_target'] else 'MISSED'})"
        print(line)
    load = report["load_average_1min"]
    print(f"load average (1 min) {load['start']} at the start, {load['end']} at the end, on {report['cpus']} CPUs")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
