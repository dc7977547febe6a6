"""Insights: scripted conversations as Rasa's event broker publishes them, through the service's
real consumer and a real Redis, then the report's figures asserted exactly (API and CSV), the
roles, idempotence when a batch is read twice, and erasure of a customer's snippets and repeats.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import redis as sync_redis  # noqa: E402

from contract import keys  # noqa: E402
from handoff.agents import add_agent  # noqa: E402
from handoff.app import create_app  # noqa: E402
from handoff.insights import (  # noqa: E402
    ABANDON_SECONDS, Event, advance, mask_snippet, parse_period, percentile,
)
from handoff.settings import Settings  # noqa: E402
from tests.fakes.packets import packet  # noqa: E402
from tests.handoff.conftest import (  # noqa: E402
    NAMES, PASSWORDS, Clock, Service, async_fixture, eventually, running,
)

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)  # a Monday, within opening hours
ROOT = Path(__file__).resolve().parents[2]
SANNE, EMILY, LOTTE, PIETER = "48213377", "60418825", "39481726", "51937204"


# --- events as bot/event_broker.py publishes them ------------------------------------------------


class Conversation:
    """One conversation's tracker events, written to the stream the way Rasa's broker does."""

    def __init__(self, redis: sync_redis.Redis, language: str, channel: str, start: datetime) -> None:
        self.redis, self.language, self.channel = redis, language, channel
        self.id = f"conv-{uuid.uuid4().hex}"
        self.at = start.timestamp()

    def _publish(self, event: Dict[str, Any], seconds: float = 2.0) -> None:
        self.at += seconds
        event = {"sender_id": self.id, "timestamp": self.at, **event}
        self.redis.xadd(keys.EVENTS_STREAM, {"sender_id": self.id, "event": json.dumps(event, ensure_ascii=False)})

    def user(self, text: str, intent: str) -> Conversation:
        self._publish({"event": "user", "text": text, "input_channel": self.channel,
                       "parse_data": {"text": text, "intent": {"name": intent}, "language": self.language}})
        self.slot("language", self.language)
        return self

    def slot(self, name: str, value: Any) -> Conversation:
        self._publish({"event": "slot", "name": name, "value": value}, 0.01)
        return self

    def bot(self, utter_action: str, text: str = "…", **metadata: Any) -> Conversation:
        self._publish({"event": "bot", "text": text, "metadata": {"utter_action": utter_action, **metadata}}, 0.1)
        return self

    def take_problem(self, topic: str, description: Optional[str]) -> Conversation:
        self.slot("problem_intent", topic)
        if description:
            self.slot("problem_description", description)
        return self.bot(f"utter_understood_{topic}")

    def identified(self, customer_id: str) -> Conversation:
        return self.slot("customer_id", customer_id).slot("identity_verified_by", "customer_number+postcode")

    def solved(self, facts: Optional[Dict[str, Any]] = None) -> Conversation:
        if facts:
            self.slot("last_topic", "x").slot("topic_facts", facts)
        return self.slot("problem_intent", None).bot("utter_anything_else").slot("next_step", "done")

    def handed(self, reason: str, case_id: str) -> Conversation:
        # The order action_handoff emits its events in.
        self.slot("handoff_reason", reason).bot(f"utter_handoff_{reason}")
        self.slot("handoff_pending", None).slot("handoff_case_id", case_id)
        self._publish({"event": "pause"}, 0.01)
        return self

    def agent_line(self, text: str, at: datetime) -> Conversation:
        self.at = at.timestamp() - 0.1
        self._publish({"event": "bot", "text": text, "metadata": {"agent_id": "eva", "agent_name": "Eva de Jong"}}, 0.1)
        return self


@async_fixture
async def insights_service(settings: Settings, redis_sync: sync_redis.Redis, clock: Clock):
    clock.set(T0)
    async with running(create_app(settings.model_copy(update={"retention_days": 30}), clock=clock)) as started:
        yield started


async def signed_in(service: Service, username: str, role: str):
    await add_agent(service.store, username, NAMES[username], PASSWORDS[username], role=role)
    return await service.agent(username)


async def open_case(service: Service, conversation: Conversation, reason: str, customer: Optional[str]) -> str:
    body = packet(conversation.id, reason=reason, language=conversation.language, channel=conversation.channel)
    body["identity"]["customer_id"] = customer
    response = await service.bot().post("/api/cases", json=body)
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def settled(service: Service, redis_sync: sync_redis.Redis) -> None:
    """Waits until the consumer acknowledged everything on the stream."""
    async def done() -> bool:
        # Both groups: the live consumer's and the insights aggregation's.
        groups = {g["name"]: g for g in redis_sync.xinfo_groups(keys.EVENTS_STREAM)}
        return set(groups) == {keys.EVENTS_GROUP, keys.INSIGHTS_GROUP} and all(
            g["pending"] == 0 and g["lag"] == 0 for g in groups.values())
    await eventually(done)


async def script(service: Service, redis_sync: sync_redis.Redis, clock: Clock) -> Dict[str, Any]:
    """The scripted week: every outcome and reason, a repeat contact, an outage, a late promise."""
    r = redis_sync
    ids: Dict[str, Any] = {}
    # The week before: one order question (the previous period).
    old = Conversation(r, "nl", "rest", T0 - timedelta(days=8))
    old.user("waar blijft mijn bestelling", "order_status").take_problem("order_status", "waar blijft mijn bestelling")
    old.identified(PIETER).solved()
    # 1. Solved, Dutch, with personal data in the description (masked in the report).
    one = Conversation(r, "nl", "rest", T0)
    one.user("Waar is mijn pakket? Mail sanne@example.nl of 06-12345678, klant 48213377", "order_status")
    one.take_problem("order_status", "Waar is mijn pakket? Mail sanne@example.nl of 06-12345678, klant 48213377")
    one.identified(SANNE).solved()
    # ...and she leaves feedback (the assistant thanks her; her phone number is masked).
    one.user("Top geholpen! Bel me gerust op 06-12345678", "feedback").bot("utter_feedback_thanks")
    ids["sanne_first"] = one.id
    # 2. Solved, English, on the web widget.
    two = Conversation(r, "en", "socketio", T0 + timedelta(minutes=1))
    two.user("I forgot my password", "account_access").take_problem("account_access", "I forgot my password")
    two.identified(EMILY).solved()
    # 3. Asked for a person before saying what it is about; nobody is available this morning, so
    # every case gets a reply promise.
    three = Conversation(r, "nl", "rest", T0 + timedelta(minutes=2))
    three.user("ik wil een medewerker spreken", "request_human")
    clock.set(T0 + timedelta(minutes=2))
    case_request = await open_case(service, three, "request", None)
    three.handed("request", case_request)
    ids["case_request"] = case_request
    # 4. A complaint: its promise is answered late.
    four = Conversation(r, "en", "socketio", T0 + timedelta(minutes=3))
    four.user("I want to file a complaint about your service", "complaint")
    four.take_problem("complaint", "I want to file a complaint about your service").identified(EMILY)
    clock.set(T0 + timedelta(minutes=3))
    case_complaint = await open_case(service, four, "complexity", EMILY)
    four.handed("complexity", case_complaint)
    ids["case_complaint"] = case_complaint
    # 5. Two misses: a person.
    five = Conversation(r, "nl", "rest", T0 + timedelta(minutes=4))
    five.user("blabla fiets", "nlu_fallback").user("nee dat bedoel ik niet", "deny")
    clock.set(T0 + timedelta(minutes=4))
    case_miss = await open_case(service, five, "second_miss", None)
    five.handed("second_miss", case_miss)
    # 6. The backend failed while solving a defect.
    six = Conversation(r, "en", "rest", T0 + timedelta(minutes=5))
    six.user("my kettle is broken", "defective_product").take_problem("defective_product", "my kettle is broken")
    six.identified(EMILY).bot("utter_backend_unavailable")
    clock.set(T0 + timedelta(minutes=5))
    case_backend = await open_case(service, six, "backend_failure", EMILY)
    six.handed("backend_failure", case_backend)
    # 7. Sanne again about her order the next day: a repeat contact, solved.
    seven = Conversation(r, "nl", "whatsapp", T0 + timedelta(days=1))
    seven.user("mijn pakket is er nog steeds niet", "order_status")
    seven.take_problem("order_status", "mijn pakket is er nog steeds niet").identified(SANNE).solved()
    ids["sanne_repeat"] = seven.id
    # 8. An outage: told before she explains, then confirmed (solved).
    eight = Conversation(r, "nl", "rest", T0 + timedelta(minutes=6))
    eight.user("mijn internet doet het niet", "report_outage").take_problem("report_outage", "mijn internet doet het niet")
    eight.identified(LOTTE).bot("utter_outage_notice", description_en="Internet outage in Utrecht",
                                description_nl="Internetstoring in Utrecht", postcode="3581 KP")
    eight.bot("utter_outage_confirmed").bot("utter_goodwill_bill_credit")
    eight.solved({"postcode": "3581 KP", "outage_id": "OUT-7"})
    # 9. A refund question, then silence: abandoned after an hour.
    nine = Conversation(r, "en", "socketio", T0 + timedelta(minutes=7))
    nine.user("I want my money back for the printer", "request_refund")
    nine.take_problem("request_refund", "I want my money back for the printer")
    await settled(service, r)
    # An agent claims the request after 5 minutes and answers; the complaint after its promise.
    eva = await service.agent("eva")
    clock.set(T0 + timedelta(minutes=7))
    assert (await eva.post(f"/api/cases/{case_request}/claim")).status_code == 200
    clock.set(T0 + timedelta(minutes=8))
    answered = await eva.post(f"/api/cases/{case_request}/messages", json={"text": "Goedemiddag, u spreekt met Eva."})
    assert answered.status_code == 200
    three.agent_line("Goedemiddag, u spreekt met Eva.", T0 + timedelta(minutes=8))
    complaint = (await eva.get(f"/api/cases/{case_complaint}")).json()
    due = datetime.fromisoformat(complaint["promise"]["due_at"].replace("Z", "+00:00"))
    clock.set(due + timedelta(minutes=10))
    assert (await eva.post(f"/api/cases/{case_complaint}/claim")).status_code == 200
    clock.set(due + timedelta(minutes=12))
    assert (await eva.post(f"/api/cases/{case_complaint}/messages", json={"text": "Hello, this is Eva."})).status_code == 200
    four.agent_line("Hello, this is Eva.", due + timedelta(minutes=12))
    await settled(service, r)
    clock.set(T0 + timedelta(days=1, hours=3))
    await service.app.state.insights.sweep(now=clock().timestamp())
    ids["due"] = due
    return ids


@pytest.mark.asyncio
async def test_the_scripted_week_gives_exact_figures(insights_service: Service, redis_sync: sync_redis.Redis,
                                                      clock: Clock) -> None:
    ids = await script(insights_service, redis_sync, clock)
    supervisor = await signed_in(insights_service, "tom", "supervisor")
    response = await supervisor.get("/api/insights", params={"period": "7d"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["period"] == {"from": "2026-02-25", "to": "2026-03-03", "days": 7}
    topics = {t["topic"]: t for t in report["topics"]}
    figures = {name: {k: t[k] for k in ("contacts", "previous", "solved", "handed", "abandoned", "repeat")}
               for name, t in topics.items()}
    assert figures == {
        "order_status": {"contacts": 2, "previous": 1, "solved": 2, "handed": 0, "abandoned": 0, "repeat": 1},
        "account_access": {"contacts": 1, "previous": 0, "solved": 1, "handed": 0, "abandoned": 0, "repeat": 0},
        "unspecified": {"contacts": 2, "previous": 0, "solved": 0, "handed": 2, "abandoned": 0, "repeat": 0},
        "complaint": {"contacts": 1, "previous": 0, "solved": 0, "handed": 1, "abandoned": 0, "repeat": 0},
        "defective_product": {"contacts": 1, "previous": 0, "solved": 0, "handed": 1, "abandoned": 0, "repeat": 0},
        "report_outage": {"contacts": 1, "previous": 0, "solved": 1, "handed": 0, "abandoned": 0, "repeat": 0},
        "request_refund": {"contacts": 1, "previous": 0, "solved": 0, "handed": 0, "abandoned": 1, "repeat": 0},
    }
    assert topics["order_status"]["change"] == 1 and topics["order_status"]["change_percent"] == 100.0
    assert topics["order_status"]["name"] == "Bestelstatus" and topics["complaint"]["name"] == "Complaint"
    assert topics["unspecified"]["reasons"] == {"request": 1, "second_miss": 1}
    assert report["reasons"] == {"backend_failure": 1, "complexity": 1, "request": 1, "second_miss": 1}
    assert report["totals"]["contacts"] == 9 and report["totals"]["open"] == 0
    assert report["by_language"] == {"nl": 5, "en": 4}
    assert report["by_channel"] == {"rest": 5, "socketio": 3, "whatsapp": 1}
    assert report["outages"] == [{"outage": "OUT-7: Internet outage in Utrecht", "contacts": 1}]
    assert [(r["conversation_id"], r["previous_conversation_id"], r["customer_id"], r["topic"])
            for r in report["repeats"]] == [(ids["sanne_repeat"], ids["sanne_first"], SANNE, "order_status")]
    # Waits: the request waited 5 minutes for Eva; the complaint until 10 minutes after its promise.
    waits = report["waiting"]
    complaint_wait = (ids["due"] + timedelta(minutes=10) - (T0 + timedelta(minutes=3))).total_seconds()
    assert waits["wait_for_person"] == {"count": 2, "median_seconds": (300 + complaint_wait) / 2,
                                        "p90_seconds": 300 + 0.9 * (complaint_wait - 300)}
    complaint_reply = complaint_wait + 120
    assert waits["first_human_reply"] == {"count": 2, "median_seconds": (360 + complaint_reply) / 2,
                                          "p90_seconds": 360 + 0.9 * (complaint_reply - 360)}
    # The two cases nobody answered are past their promised reply time now.
    assert waits["past_promised_reply_now"] == 2
    # Four promises: the request's kept, the complaint's answered late, two never answered (late).
    assert report["promises"] == {"made": 4, "kept": 1, "late": 3, "open": 0}
    assert sum(b["count"] for b in waits["histogram"]) == 2
    # The customers' own words, masked.
    order_words = [s["text"] for s in topics["order_status"]["snippets"]]
    assert "mijn pakket is er nog steeds niet" in order_words
    masked = next(t for t in order_words if t.startswith("Waar is mijn pakket"))
    assert "sanne@example.nl" not in masked and "12345678" not in masked and "48213377" not in masked
    assert "[email]" in masked and "[phone]" in masked and "[number]" in masked
    # Goodwill the assistant granted, and the feedback verbatim (masked).
    assert report["goodwill"]["granted"] == 1 and report["goodwill"]["by_kind"] == {"bill_credit": 1}
    assert topics["report_outage"]["goodwill"] == 1
    [feedback] = report["feedback"]["items"]
    assert feedback["text"] == "Top geholpen! Bel me gerust op [phone]"
    assert (feedback["language"], feedback["channel"]) == ("nl", "rest")
    # Per language: the English week alone.
    english = (await supervisor.get("/api/insights", params={"language": "en"})).json()
    assert english["totals"]["contacts"] == 4 and english["reasons"] == {"backend_failure": 1, "complexity": 1}
    assert english["feedback"]["items"] == [] and english["goodwill"]["granted"] == 0
    # The CSV has the same figures.
    rows = list(csv.DictReader(io.StringIO((await supervisor.get("/api/insights.csv")).text)))
    by_topic = {row["topic"]: row for row in rows}
    assert by_topic["order_status"]["contacts"] == "2" and by_topic["order_status"]["repeat"] == "1"
    assert by_topic["unspecified"]["handed_second_miss"] == "1"


@pytest.mark.asyncio
async def test_agents_get_403_and_supervisors_and_admins_get_the_report(insights_service: Service) -> None:
    agent = await signed_in(insights_service, "eva", "agent")
    assert (await agent.get("/api/insights")).status_code == 403
    assert (await agent.get("/api/insights.csv")).status_code == 403
    assert (await agent.get("/insights")).status_code == 403
    admin = await signed_in(insights_service, "ana", "admin")
    assert (await admin.get("/api/insights")).status_code == 200
    assert (await insights_service.client().get("/api/insights")).status_code == 401
    assert (await admin.get("/api/insights", params={"period": "nonsense"})).status_code == 422


@pytest.mark.asyncio
async def test_erasure_removes_the_customers_snippets_and_repeats(insights_service: Service,
                                                                  redis_sync: sync_redis.Redis, clock: Clock) -> None:
    ids = await script(insights_service, redis_sync, clock)
    admin = await signed_in(insights_service, "ana", "admin")
    before = (await admin.get("/api/insights")).json()
    assert any("pakket" in s["text"] for s in {t["topic"]: t for t in before["topics"]}["order_status"]["snippets"])
    response = await admin.post(f"/api/admin/customers/{SANNE}/erase",
                                json={"conversations": [ids["sanne_first"], ids["sanne_repeat"]]})
    assert response.status_code == 200, response.text
    assert response.json()["insights_entries"] >= 3
    after = (await admin.get("/api/insights")).json()
    topics = {t["topic"]: t for t in after["topics"]}
    assert topics["order_status"]["snippets"] == []
    assert after["repeats"] == [] and after["feedback"]["items"] == []
    assert before["feedback"]["items"]
    assert redis_sync.exists(keys.insights_customer(SANNE)) == 0
    # The counters hold no personal data and stay.
    assert topics["order_status"]["contacts"] == 2 and topics["order_status"]["repeat"] == 1
    # Other customers' words are untouched.
    assert topics["account_access"]["snippets"][0]["text"] == "I forgot my password"
    for key in redis_sync.scan_iter(keys.PREFIX + "insights:day:*"):
        stored = json.dumps(redis_sync.hgetall(key) if redis_sync.type(key) == "hash" else redis_sync.lrange(key, 0, -1))
        assert SANNE not in stored and "conv-" not in stored


# --- the pure aggregation ------------------------------------------------------------------------


def events(*items: Dict[str, Any], start: int = 1) -> List[Event]:
    return [Event(f"{1700000000000 + i}-0", 1700000000.0 + i, item) for i, item in enumerate(items, start)]


def test_a_batch_read_twice_counts_once() -> None:
    batch = events({"event": "user", "text": "waar is mijn pakket", "input_channel": "rest"},
                   {"event": "slot", "name": "language", "value": "nl"},
                   {"event": "slot", "name": "problem_intent", "value": "order_status"},
                   {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_anything_else"}})
    state, effects = advance(None, "c1", batch)
    assert sorted(effects.counts.values()) == [1, 1]
    again, repeated = advance(state, "c1", batch)
    assert again == state and repeated.empty()


def test_a_solved_contact_that_still_goes_to_a_person_counts_as_handed_once() -> None:
    state, first = advance(None, "c1", events(
        {"event": "slot", "name": "language", "value": "en"},
        {"event": "slot", "name": "problem_intent", "value": "order_status"},
        {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_anything_else"}}))
    state, second = advance(state, "c1", events(
        {"event": "slot", "name": "handoff_reason", "value": "request"},
        {"event": "slot", "name": "handoff_case_id", "value": "c_1"}, start=10))
    day = "2023-11-14"
    assert second.counts == {(day, "solved|en|unknown|order_status|"): -1,
                             (day, "handed|en|unknown|order_status|request"): 1}


def test_the_late_opened_request_sets_its_reason_after_the_case() -> None:
    # handoff/pending.py writes handoff_case_id before handoff_reason.
    _, effects = advance(None, "c1", events(
        {"event": "slot", "name": "handoff_pending", "value": "backend_failure"},
        {"event": "slot", "name": "handoff_case_id", "value": "c_9"},
        {"event": "slot", "name": "handoff_reason", "value": "backend_failure"}))
    counted = {name: n for (_, name), n in effects.counts.items() if n}
    assert counted == {"contacts|unknown|unknown|unspecified|": 1,
                       "handed|unknown|unknown|unspecified|backend_failure": 1}


def test_an_idle_contact_is_abandoned_by_the_sweep_not_before() -> None:
    state, _ = advance(None, "c1", events({"event": "slot", "name": "problem_intent", "value": "request_refund"}))
    _, early = advance(state, "c1", [], now=1700000001.0 + ABANDON_SECONDS - 1)
    assert early.empty()
    _, late = advance(state, "c1", [], now=1700000001.0 + ABANDON_SECONDS)
    assert [name for (_, name) in late.counts] == ["abandoned|unknown|unknown|request_refund|"]


def test_snippets_are_masked_and_short() -> None:
    text = mask_snippet("klant 48213377, postcode 3511 AB, mail a.b@example.com, bel +31 6 12345678 " + "x" * 400)
    assert "48213377" not in text and "3511 AB" not in text and "example.com" not in text and "12345678" not in text
    assert len(text) == 300


def test_periods_and_percentiles() -> None:
    period = parse_period("30d", T0.date())
    assert (period.first.isoformat(), period.last.isoformat(), period.days) == ("2026-02-01", "2026-03-02", 30)
    assert parse_period("2026-02-01..2026-02-07").before().first.isoformat() == "2026-01-25"
    with pytest.raises(ValueError):
        parse_period("last week")
    assert percentile([10, 20, 30, 40], 0.5) == 25 and percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9.1
    assert percentile([], 0.5) is None


@pytest.mark.asyncio
async def test_make_insights_prints_the_same_figures_and_writes_csv(
        insights_service: Service, redis_sync: sync_redis.Redis, clock: Clock, redis_url: str, tmp_path: Path) -> None:
    await script(insights_service, redis_sync, clock)
    supervisor = await signed_in(insights_service, "tom", "supervisor")
    api = (await supervisor.get("/api/insights", params={"period": "2026-02-25..2026-03-03"})).json()
    target = tmp_path / "week.csv"
    result = subprocess.run(
        ["make", "--no-print-directory", "insights", "PERIOD=2026-02-25..2026-03-03", f"CSV={target}"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": redis_url, "HANDOFF_REDIS_URL": redis_url},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "contacts 9 (previous 1), solved by the assistant 4, handed to a person 4, abandoned 1, open 0, " \
           "repeat contacts 1" in out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    # topic, contacts, prev, change, solved, handed, abandoned, open, repeat, then the reasons
    assert rows["Bestelstatus"][1:9] == ["2", "1", "+1", "(+100%)", "2", "0", "0", "0"]
    assert "promises: made 4, kept 1, late 3, open 0" in out
    assert "contacts caused by known outages: OUT-7: Internet outage in Utrecht 1" in out
    assert "goodwill granted: 1, bill credit 1" in out
    assert "feedback customers gave:" in out and "Top geholpen! Bel me gerust op [phone]" in out
    assert "[email]" in out and "sanne@example.nl" not in out
    with target.open() as handle:
        from_csv = {row["topic"]: row for row in csv.DictReader(handle)}
    for topic in api["topics"]:
        assert int(from_csv[topic["topic"]]["contacts"]) == topic["contacts"]
        assert int(from_csv[topic["topic"]]["handed"]) == topic["handed"]


@pytest.mark.asyncio
async def test_a_repeat_in_the_same_batch_is_found(insights_service: Service, redis_sync: sync_redis.Redis) -> None:
    aggregator = insights_service.app.state.insights
    batch = []
    for n, conversation_id in enumerate(("first", "second")):
        for i, event in enumerate([{"event": "slot", "name": "problem_intent", "value": "order_status"},
                                   {"event": "slot", "name": "customer_id", "value": SANNE}]):
            batch.append((f"{1772445600000 + n * 10 + i}-0", conversation_id, T0.timestamp() + n * 60 + i, event))
    await aggregator.record(batch)
    repeats = [json.loads(m) for m in redis_sync.zrange(keys.insights_repeats(), 0, -1)]
    assert [(r["conversation_id"], r["previous_conversation_id"]) for r in repeats] == [("second", "first")]


def test_an_outage_id_that_comes_after_the_outcome_moves_the_count() -> None:
    # Rasa logs an action's messages before its slots: utter_anything_else, then topic_facts.
    state, first = advance(None, "c1", events(
        {"event": "slot", "name": "problem_intent", "value": "report_outage"},
        {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_outage_notice",
                                                   "description_en": "Internet outage in Utrecht"}},
        {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_anything_else"}}))
    assert first.counts[("2023-11-14", "outage|unknown|unknown|report_outage|Internet outage in Utrecht")] == 1
    _, second = advance(state, "c1", events(
        {"event": "slot", "name": "topic_facts", "value": {"outage_id": "OUT-7"}}, start=10))
    assert {name: n for (_, name), n in second.counts.items()} == {
        "outage|unknown|unknown|report_outage|Internet outage in Utrecht": -1,
        "outage|unknown|unknown|report_outage|OUT-7: Internet outage in Utrecht": 1}


@pytest.mark.asyncio
async def test_the_sweep_stops_watching_what_is_settled_or_gone(insights_service: Service,
                                                                redis_sync: sync_redis.Redis) -> None:
    aggregator = insights_service.app.state.insights
    start = T0.timestamp()
    await aggregator.record([("1772445600000-0", "quiet", start, {"event": "slot", "name": "problem_intent",
                                                                  "value": "order_status"}),
                             ("1772445600001-0", "handed", start, {"event": "slot", "name": "handoff_case_id",
                                                                   "value": "c_unknown"})])
    assert set(redis_sync.zrange(keys.insights_watch(), 0, -1)) == {"quiet", "handed"}
    redis_sync.zadd(keys.insights_watch(), {"expired": start})  # its state expired
    await aggregator.sweep(now=start + ABANDON_SECONDS + 1)
    # The quiet one is abandoned; the case nobody answered is still watched (for its first reply).
    assert set(redis_sync.zrange(keys.insights_watch(), 0, -1)) == {"handed"}
    await aggregator.sweep(now=start + 3 * 86400)
    assert redis_sync.zrange(keys.insights_watch(), 0, -1) == []


@pytest.mark.asyncio
async def test_the_insights_group_counts_a_redelivered_batch_once_and_skips_erased_entries(
        redis_url: str, redis_sync: sync_redis.Redis) -> None:
    from redis.asyncio import Redis

    from handoff.insights import Aggregator
    from handoff.insights_consumer import InsightsConsumer

    conversation = Conversation(redis_sync, "nl", "rest", T0)
    conversation.user("waar is mijn pakket", "order_status").take_problem("order_status", "waar is mijn pakket")
    conversation.solved()
    gone = redis_sync.xadd(keys.EVENTS_STREAM, {"sender_id": "erased", "event": "{}"})
    redis_sync.xdel(keys.EVENTS_STREAM, gone)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        consumer = InsightsConsumer(client, Aggregator(client), name="test")
        await consumer.ensure_group()
        consumer._reread_pending = False
        entries = (await client.xreadgroup(keys.INSIGHTS_GROUP, "test", {keys.EVENTS_STREAM: ">"}))[0][1]
        assert await consumer.handle(entries) == len(entries)
        assert await consumer.handle(entries) == len(entries)  # read again after a failure: counted once
        day = redis_sync.hgetall(keys.insights_day("2026-03-02"))
        assert day == {"contacts|nl|rest|order_status|": "1", "solved|nl|rest|order_status|": "1"}
        assert redis_sync.xinfo_groups(keys.EVENTS_STREAM)[0]["pending"] == 0
    finally:
        await client.aclose()
