"""Insights through the real stack: scripted Dutch and English conversations over REST (Rasa, the
action server, the event broker, the handoff service's consumer and aggregation, Redis), then the
report's figures asserted exactly through the API and through ``make insights``.

The set: solved questions in both languages, a person asked for, a complaint (complex), two
misses, the backend failing, a repeat contact (Sanne about her order again), an outage contact
(Lotte), a refund question left without an answer (abandoned) and reply promises that pass
unkept (late) next to one an agent keeps. Nobody is available when the cases open, so each gets
a promise. The clock is not moved: the aggregation's sweep is run with a later "now", as the
service's housekeeping would run it an hour later.
"""

import asyncio
import json
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis

from contract import keys
from handoff.insights import ABANDON_SECONDS, Aggregator
from scripts.clients import Agent
from tests.e2e.conftest import Customer

ROOT = Path(__file__).resolve().parents[2]
HPY = ROOT / ".venv-handoff" / "bin" / "python"
MILA_ORDERS = ("2024121501", "2024121502", "2024121503")  # Mila Hendriks's: no other e2e test uses or erases her


def settled(client: "redis.Redis", timeout: float = 30.0) -> None:
    """Waits until the handoff service's consumers (live and insights) acknowledged every event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        groups = {g["name"]: g for g in client.xinfo_groups(keys.EVENTS_STREAM)}
        if set(groups) >= {keys.EVENTS_GROUP, keys.INSIGHTS_GROUP} and all(
                groups[name]["pending"] == 0 and groups[name]["lag"] == 0
                for name in (keys.EVENTS_GROUP, keys.INSIGHTS_GROUP)):
            return  # each group acknowledges only after its work is written
        time.sleep(0.1)
    raise AssertionError("the handoff service's consumer did not catch up")


def say_all(person: Customer, *messages: str) -> list:
    replies = []
    for message in messages:
        replies += person.say(message)
    return replies


@pytest.fixture
def backend_failing_for_mila(stack):
    """Mila's orders get a status the backend does not know: solving them fails (BackendUnavailable)."""
    path = stack.extra_env["KLANTCONTACT_DB_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        before = db.execute(f"SELECT number, status FROM orders WHERE number IN {MILA_ORDERS}").fetchall()
        db.execute(f"UPDATE orders SET status = 'mislaid' WHERE number IN {MILA_ORDERS}")
    yield
    with sqlite3.connect(path) as db:
        db.executemany("UPDATE orders SET status = ? WHERE number = ?", [(s, n) for n, s in before])


def test_scripted_conversations_give_exact_figures(stack, backend_failing_for_mila, tmp_path):
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    settled(client)
    # Only this test's conversations: earlier tests of the session share the stack.
    for key in client.scan_iter(keys.PREFIX + "insights:*"):
        client.delete(key)
    for key in client.scan_iter(keys.presence("*")):
        client.delete(key)  # nobody available: every case gets a reply promise

    nl, en = {"locale": "nl-NL"}, {"locale": "en"}
    sanne_first = Customer(stack, nl)
    say_all(sanne_first, "waar blijft mijn bestelling nou", "48213377", "3511 AB")
    sanne_again = Customer(stack, nl)
    say_all(sanne_again, "waar blijft mijn bestelling nou", "48213377", "3511 AB")
    emily = Customer(stack, en)
    say_all(emily, "forgot my password and cant log in", "emily.clarke@example.co.uk", "SW1A 1AA")
    lotte = Customer(stack, nl)
    say_all(lotte, "mijn internet doet het al de hele ochtend niet", "39481726", "3581 KP")
    asks = Customer(stack, nl)
    asks.say("ik wil een medewerker spreken")
    complains = Customer(stack, en)
    say_all(complains, "60418825 SW1A 1AA",
            "i want to file a complaint, i have been passed around three times and nobody helps")
    misses = Customer(stack, en)
    say_all(misses, "/nlu_fallback", "/nlu_fallback")
    mila = Customer(stack, nl)
    say_all(mila, "waar blijft mijn bestelling nou", "41726358", "5611 AZ")
    refund = Customer(stack, en)
    refund.say("I want my money back for the printer")

    expected_reasons = {asks: "request", complains: "complexity", misses: "second_miss", mila: "backend_failure"}
    for person, reason in expected_reasons.items():
        slots = person.slots()
        assert slots["handoff_reason"] == reason and slots["handoff_case_id"], (reason, slots.get("handoff_reason"))
    for person in (sanne_first, sanne_again, emily, lotte):
        assert "utter_anything_else" in person.bot_actions(), person.bot_actions()

    # An agent takes the complaint and answers before its promised time.
    password = uuid.uuid4().hex
    stack.add_agent("iris", "Iris Bos", password)
    iris = Agent(stack.handoff_url, "iris", password)
    complaint_case = complains.slots()["handoff_case_id"]
    assert iris.post(f"/api/cases/{complaint_case}/claim").status_code == 200
    assert iris.post(f"/api/cases/{complaint_case}/messages",
                     {"text": "Hello, this is Iris. I have your complaint in front of me."}).status_code == 200
    settled(client)

    # An hour and more later: the refund question is abandoned, the three unanswered promises late.
    dues = [iris.get(f"/api/cases/{person.slots()['handoff_case_id']}").json()["promise"]["due_at"]
            for person in expected_reasons]
    latest_due = max(datetime.fromisoformat(d.replace("Z", "+00:00")).timestamp() for d in dues)
    later = max(time.time() + ABANDON_SECONDS, latest_due) + 60

    async def sweep() -> None:
        from redis.asyncio import Redis
        async_client = Redis.from_url(stack.redis_url, decode_responses=True)
        try:
            await Aggregator(async_client).sweep(now=later)
        finally:
            await async_client.close()
    asyncio.run(sweep())

    # The report, as a supervisor sees it.
    subprocess.run([str(HPY), "-m", "handoff.agents", "role", "iris", "supervisor"], cwd=ROOT,
                   env=stack.handoff_env(), check=True, capture_output=True)
    report = iris.get("/api/insights?period=1d").json()
    figures = {t["topic"]: {k: t[k] for k in ("contacts", "solved", "handed", "abandoned", "repeat", "reasons")}
               for t in report["topics"]}
    assert figures == {
        "order_status": {"contacts": 3, "solved": 2, "handed": 1, "abandoned": 0, "repeat": 1,
                         "reasons": {"backend_failure": 1}},
        "account_access": {"contacts": 1, "solved": 1, "handed": 0, "abandoned": 0, "repeat": 0, "reasons": {}},
        "report_outage": {"contacts": 1, "solved": 1, "handed": 0, "abandoned": 0, "repeat": 0, "reasons": {}},
        "complaint": {"contacts": 1, "solved": 0, "handed": 1, "abandoned": 0, "repeat": 0,
                      "reasons": {"complexity": 1}},
        "unspecified": {"contacts": 2, "solved": 0, "handed": 2, "abandoned": 0, "repeat": 0,
                        "reasons": {"request": 1, "second_miss": 1}},
        "request_refund": {"contacts": 1, "solved": 0, "handed": 0, "abandoned": 1, "repeat": 0, "reasons": {}},
    }, figures
    assert report["totals"]["contacts"] == 9 and report["totals"]["open"] == 0
    assert report["by_language"] == {"nl": 5, "en": 4}
    assert report["by_channel"] == {"rest": 9}
    assert [(r["conversation_id"], r["previous_conversation_id"], r["customer_id"]) for r in report["repeats"]] \
        == [(sanne_again.sender, sanne_first.sender, "48213377")]
    assert len(report["outages"]) == 1 and report["outages"][0]["contacts"] == 1
    assert report["promises"] == {"made": 4, "kept": 1, "late": 3, "open": 0}
    # None of these conversations made a promise in the backend (see the test below for one that does).
    assert report["backend_promises"]["total"]["made"] == 0, report["backend_promises"]
    assert report["waiting"]["wait_for_person"]["count"] == 1
    assert report["waiting"]["first_human_reply"]["count"] == 1
    words = {t["topic"]: [s["text"] for s in t["snippets"]] for t in report["topics"]}
    assert words["report_outage"] == ["mijn internet doet het al de hele ochtend niet"]
    assert words["order_status"].count("waar blijft mijn bestelling nou") == 3

    # The same figures in the terminal, and as CSV.
    target = tmp_path / "insights.csv"
    result = subprocess.run(["make", "--no-print-directory", "insights", "PERIOD=1d", f"CSV={target}"], cwd=ROOT,
                            env={**os.environ, "REDIS_URL": stack.redis_url, "HANDOFF_REDIS_URL": stack.redis_url},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ("contacts 9 (previous 0), solved by the assistant 4, handed to a person 4, abandoned 1, open 0, "
            "repeat contacts 1") in result.stdout, result.stdout
    assert "promises: made 4, kept 1, late 3, open 0" in result.stdout
    assert target.read_text().splitlines()[0].startswith("topic,name,contacts,previous,change,solved,handed")
    by_topic = {row.split(",")[0]: row.split(",") for row in target.read_text().splitlines()[1:]}
    assert {topic: int(row[2]) for topic, row in by_topic.items()} == {t: f["contacts"] for t, f in figures.items()}
    # And in the console: the page in headless Chromium (Playwright lives in the handoff
    # environment), its totals, table and the data its charts drew; a screenshot for the record.
    shot = Path(os.environ.get("HELDER_INSIGHTS_SCREENSHOT") or tmp_path / "insights.png")
    seen = console_figures(stack.handoff_url, "iris", password, shot)
    assert seen["kpis"] == {"contacts": "9", "solved": "4", "handed": "4", "abandoned": "1", "repeat": "1"}, seen
    assert seen["rows"]["Bestelstatus"] == ["3", "new", "2", "1", "backend failure 1", "0", "1"], seen["rows"]
    assert seen["rows"]["Complaint"][4] == "complex 1"
    assert seen["charts"] == [9, 9, 1], seen["charts"]  # contacts per day, outcomes per topic, waits
    assert shot.stat().st_size > 20_000

    # Erasing Mila (python -m handoff.erasure, what `make erase` runs on the Redis side) takes her
    # words out of the report; the counters, which hold nobody's data, stay.
    erased = subprocess.run([str(HPY), "-m", "handoff.erasure", "--redis-url", stack.redis_url, "erase",
                             "--customer", "41726358", "--logs", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert erased.returncode == 0, erased.stderr
    assert mila.sender in json.loads(erased.stdout)["conversations"]
    after = iris.get("/api/insights?period=1d").json()
    order_status = next(t for t in after["topics"] if t["topic"] == "order_status")
    assert [s["text"] for s in order_status["snippets"]] == ["waar blijft mijn bestelling nou"] * 2
    assert order_status["contacts"] == 3 and order_status["reasons"] == {"backend_failure": 1}
    iris.session.close()
    client.close()


def test_a_promise_made_in_the_backend_reaches_the_report(stack):
    """An erasure request through the real stack: the backend's promise goes over the promise stream
    to the insights consumer and is counted per kind, under the conversation's topic and language."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    settled(client)
    for key in client.scan_iter(keys.PREFIX + "insights:*"):
        client.delete(key)
    noah = Customer(stack, {"locale": "nl-NL"})
    say_all(noah, "ik wil mijn account laten opheffen", "37710254", "9711 LM")
    assert "utter_account_deletion_recorded" in noah.bot_actions(), noah.bot_actions()
    password = uuid.uuid4().hex
    stack.add_agent("joost", "Joost Smit", password)
    subprocess.run([str(HPY), "-m", "handoff.agents", "role", "joost", "supervisor"], cwd=ROOT,
                   env=stack.handoff_env(), check=True, capture_output=True)
    joost = Agent(stack.handoff_url, "joost", password)
    deadline = time.monotonic() + 30
    while True:
        settled(client)
        report = joost.get("/api/insights?period=1d").json()
        if report["backend_promises"]["total"]["made"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(k["kind"], k["made"], k["open"], k["late"]) for k in report["backend_promises"]["kinds"]] \
        == [("privacy", 1, 1, 0)], report["backend_promises"]
    topic = next(t for t in report["topics"] if t["topic"] == "delete_account")
    assert topic["promises"]["made"] == 1, topic
    joost.session.close()
    client.close()


CONSOLE_SCRIPT = r"""
import json, sys
from playwright.sync_api import sync_playwright
url, username, password, shot = sys.argv[1:5]
CHARTS = "['chart-daily', 'chart-outcomes', 'chart-waits']"
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                args=["--headless", "--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(url + "/")
    page.get_by_test_id("insights-link").click()
    page.wait_for_url(url + "/insights")
    page.wait_for_function("() => document.getElementById('kpi-contacts').textContent !== '\u2013'")
    page.wait_for_function("() => window.Chart && window.Chart.getChart('chart-waits')")
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height + 20})
    page.wait_for_function("() => " + CHARTS + ".every((id) => { const chart = window.Chart.getChart(id);"
                           " const box = document.getElementById(id).parentElement;"
                           " return chart && Math.abs(chart.width - box.clientWidth) < 2; })")
    page.screenshot(path=shot)
    result = {
        "kpis": {k: page.locator("#kpi-" + k).inner_text()
                 for k in ("contacts", "solved", "handed", "abandoned", "repeat")},
        "rows": {row.locator("th").inner_text(): [c.inner_text() for c in row.locator("td").all()]
                 for row in page.locator("#topics tr").all()},
        "charts": page.evaluate("() => " + CHARTS + ".map((id) => window.Chart.getChart(id).data.datasets"
                                ".reduce((s, d) => s + d.data.reduce((a, b) => a + b, 0), 0))"),
        "errors": errors,
    }
    browser.close()
print(json.dumps(result))
"""


def console_figures(url: str, username: str, password: str, shot: Path) -> dict:
    """What a supervisor sees on the insights page (run with the handoff environment's Playwright)."""
    result = subprocess.run([str(HPY), "-c", CONSOLE_SCRIPT, url, username, password, str(shot)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert not seen["errors"], seen["errors"]
    return seen


class ProbeBackend:
    """Two methods of the CustomerBackend interface: one answers, one finds the systems down."""

    def orders(self, customer_id):
        return []

    def get_customer(self, customer_id):
        from actions.backend import BackendUnavailable
        raise BackendUnavailable("down")


def test_the_action_server_metrics_time_backend_and_handoff_calls(monkeypatch):
    from prometheus_client.parser import text_string_to_metric_families

    from actions import metrics
    from actions.backend import BackendUnavailable
    from actions.handoff_client import open_case
    from scripts.stack import free_port

    assert metrics.install({}) is None  # off unless a port is configured
    port = free_port()
    assert metrics.install({"ACTIONS_METRICS_PORT": str(port),
                            "KLANTCONTACT_BACKEND": "tests.e2e.test_insights:ProbeBackend"}) == port
    assert ProbeBackend().orders("48213377") == []
    with pytest.raises(BackendUnavailable):
        ProbeBackend().get_customer("48213377")
    monkeypatch.setenv("HANDOFF_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert asyncio.run(open_case({"conversation_id": "metrics-probe"})) is None

    text = requests_get(f"http://127.0.0.1:{port}/metrics")
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    assert found[("helder_actions_backend_call_seconds_count", (("method", "orders"), ("outcome", "ok")))] == 1
    assert found[("helder_actions_backend_call_seconds_count",
                  (("method", "get_customer"), ("outcome", "unavailable")))] == 1
    assert found[("helder_actions_handoff_call_seconds_count", (("outcome", "error"),))] == 1


def requests_get(url: str) -> str:
    import requests
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.text
