"""Insights: the customer backend's promises, from the events it publishes on its stream, through
the service's real consumer and a real Redis, then the report's figures per kind asserted exactly
(API, CSV, ``make insights``): attributed to their conversation's language, channel and topic,
kept, late after their due time, cancelled, open; read twice counted once; erasure.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import redis as sync_redis  # noqa: E402

from contract import keys  # noqa: E402
from handoff.insights import (  # noqa: E402
    ATTRIBUTION_GRACE_SECONDS, PromiseEvent, advance_promise, parse_promise_entry,
)
from tests.handoff.conftest import Clock, Service, eventually  # noqa: E402
from tests.handoff import test_insights  # noqa: E402
from tests.handoff.test_insights import ROOT, T0, Conversation, signed_in  # noqa: E402

insights_service = test_insights.insights_service  # the fixture, shared with test_insights.py

pytestmark = pytest.mark.timeout(120)
HOUR = timedelta(hours=1)
DAY = "2026-03-02"


class Backend:
    """Writes promise events the way actions/backend/promise_events.py does (tests/backend checks
    that the aggregation parses what the backend writes)."""

    def __init__(self, redis: sync_redis.Redis) -> None:
        self.redis = redis
        self.next_id = 100
        self.dues: Dict[int, tuple] = {}

    def _add(self, event: str, promise_id: int, kind: str, due: datetime, at: datetime,
             conversation_id: Optional[str] = None) -> str:
        fields = {"event": event, "promise_id": str(promise_id), "kind": kind, "due_at": due.isoformat(),
                  "at": at.isoformat()}
        if event == "made":
            fields["conversation_id"] = conversation_id or ""
        return self.redis.xadd(keys.PROMISE_EVENTS_STREAM, fields)

    def made(self, kind: str, due: datetime, at: datetime, conversation: Optional[Conversation] = None) -> int:
        self.next_id += 1
        self._add("made", self.next_id, kind, due, at, conversation.id if conversation else None)
        self.dues[self.next_id] = (kind, due)
        return self.next_id

    def settle(self, promise_id: int, status: str, at: datetime) -> None:
        kind, due = self.dues[promise_id]
        self._add(status, promise_id, kind, due, at)


async def consumed(redis: sync_redis.Redis) -> None:
    """Waits until the insights group acknowledged both streams."""
    async def done() -> bool:
        if not redis.exists(keys.PROMISE_EVENTS_STREAM):
            return False
        groups = [{g["name"]: g for g in redis.xinfo_groups(stream)}.get(keys.INSIGHTS_GROUP)
                  for stream in (keys.EVENTS_STREAM, keys.PROMISE_EVENTS_STREAM)]
        return all(g is not None and g["pending"] == 0 and g["lag"] == 0 for g in groups)
    await eventually(done)


async def scripted_promises(service: Service, redis: sync_redis.Redis, clock: Clock) -> Dict[str, object]:
    """Six promises of every fate in three conversations and none; the sweep runs 3 hours later."""
    backend = Backend(redis)
    ids: Dict[str, object] = {}
    # A late order (Dutch, REST): the resend promised, then kept in time.
    order = Conversation(redis, "nl", "rest", T0)
    order.user("waar blijft mijn bestelling", "order_status")
    order.take_problem("order_status", "waar blijft mijn bestelling")
    resend = backend.made("redelivery", T0 + 48 * HOUR, T0 + timedelta(minutes=1), order)
    order.solved({"order_number": "2024120451", "status": "late"})
    backend.settle(resend, "kept", T0 + 24 * HOUR)
    # A defect (English, widget): the replacement is never confirmed; it is due in an hour.
    defect = Conversation(redis, "en", "socketio", T0 + timedelta(minutes=2))
    defect.user("my kettle is broken", "defective_product").take_problem("defective_product", "my kettle is broken")
    ids["replacement"] = backend.made("replacement", T0 + HOUR, T0 + timedelta(minutes=3), defect)
    defect.solved()
    # A refund on WhatsApp: the backend's event comes before the turn's tracker events (the turn is
    # written when it ends); it is counted under the refund topic all the same. Kept after its time.
    refund = Conversation(redis, "nl", "whatsapp", T0 + timedelta(minutes=4))
    money_back = backend.made("refund", T0 + HOUR, T0 + timedelta(minutes=5), refund)
    refund.user("ik wil mijn geld terug", "request_refund").take_problem("request_refund", "ik wil mijn geld terug")
    refund.solved()
    backend.settle(money_back, "kept", T0 + 2 * HOUR)
    ids["refund_conversation"] = refund.id
    # Without a conversation: a return cancelled in time, an erasure broken, goodwill still open.
    parcel = backend.made("return", T0 + 72 * HOUR, T0 + timedelta(minutes=6))
    backend.settle(parcel, "cancelled", T0 + timedelta(minutes=30))
    erasure = backend.made("privacy", T0 + 30 * 24 * HOUR, T0 + timedelta(minutes=7))
    backend.settle(erasure, "broken", T0 + timedelta(minutes=40))
    backend.made("goodwill", T0 + 120 * HOUR, T0 + timedelta(minutes=8))
    await consumed(redis)
    ids["before_sweep"] = (await (await signed_in(service, "tom", "supervisor")).get("/api/insights")).json()
    clock.set(T0 + 3 * HOUR)
    await service.app.state.insights.sweep(now=clock().timestamp())
    return ids


def figures(report: dict) -> Dict[str, Dict[str, int]]:
    return {k["kind"]: {w: k[w] for w in ("made", "kept", "late", "cancelled", "open")}
            for k in report["backend_promises"]["kinds"]}


@pytest.mark.asyncio
async def test_the_backends_promises_per_kind_with_exact_figures(insights_service: Service,
                                                                 redis_sync: sync_redis.Redis, clock: Clock) -> None:
    ids = await scripted_promises(insights_service, redis_sync, clock)
    # Before the sweep the replacement was still open: its due time had not been looked at.
    assert figures(ids["before_sweep"])["replacement"] == {"made": 1, "kept": 0, "late": 0, "cancelled": 0, "open": 1}
    supervisor = await signed_in(insights_service, "ana", "admin")
    report = (await supervisor.get("/api/insights", params={"period": "7d"})).json()
    assert figures(report) == {
        "replacement": {"made": 1, "kept": 0, "late": 1, "cancelled": 0, "open": 0},  # due passed while open
        "refund": {"made": 1, "kept": 0, "late": 1, "cancelled": 0, "open": 0},  # kept after it was due
        "return": {"made": 1, "kept": 0, "late": 0, "cancelled": 1, "open": 0},
        "redelivery": {"made": 1, "kept": 1, "late": 0, "cancelled": 0, "open": 0},
        "privacy": {"made": 1, "kept": 0, "late": 1, "cancelled": 0, "open": 0},  # broken
        "goodwill": {"made": 1, "kept": 0, "late": 0, "cancelled": 0, "open": 1},
    }
    assert report["backend_promises"]["total"] == {"made": 6, "kept": 1, "late": 3, "cancelled": 1, "open": 1}
    # Next to the case reply promises (none here), which keep their own figures.
    assert report["promises"] == {"made": 0, "kept": 0, "late": 0, "open": 0}
    # Each counted under its conversation's topic (the refund too, though it came before its turn).
    topics = {t["topic"]: t["promises"] for t in report["topics"]}
    assert topics["order_status"] == {"made": 1, "kept": 1, "late": 0, "cancelled": 0, "open": 0}
    assert topics["defective_product"]["late"] == 1 and topics["request_refund"]["late"] == 1
    # ...and its language and channel.
    dutch = (await supervisor.get("/api/insights", params={"language": "nl"})).json()
    assert set(figures(dutch)) == {"redelivery", "refund"}
    whatsapp = (await supervisor.get("/api/insights", params={"channel": "whatsapp"})).json()
    assert figures(whatsapp) == {"refund": {"made": 1, "kept": 0, "late": 1, "cancelled": 0, "open": 0}}
    # The counters name no conversation; the promise states no longer either.
    day = redis_sync.hgetall(keys.insights_day(DAY))
    assert day["backend_promise_made|nl|whatsapp|request_refund|refund"] == "1"
    assert day["backend_promise_made|unknown|unknown|unspecified|goodwill"] == "1"
    assert "conv-" not in str(day)
    assert redis_sync.zcard(keys.insights_promises_unattributed()) == 0
    assert redis_sync.zrange(keys.insights_promises_due(), 0, -1) == ["106"]  # the open goodwill
    # The CSV tables: per topic, and per kind with the case replies first.
    by_topic = {r["topic"]: r for r in csv.DictReader(io.StringIO((await supervisor.get("/api/insights.csv")).text))}
    assert by_topic["order_status"]["promises_kept"] == "1" and by_topic["request_refund"]["promises_late"] == "1"
    response = await supervisor.get("/api/insights.csv", params={"table": "promises"})
    assert "insights-promises-" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0] == {"promise": "reply (handoff cases)", "made": "0", "kept": "0", "late": "0", "cancelled": "0",
                       "open": "0"}
    assert {r["promise"]: r["late"] for r in rows[1:]} == {
        "replacement": "1", "refund": "1", "return": "0", "redelivery": "0", "privacy": "1", "goodwill": "0"}
    assert (await supervisor.get("/api/insights.csv", params={"table": "secrets"})).status_code == 422


@pytest.mark.asyncio
async def test_make_insights_shows_the_promises_per_kind(insights_service: Service, redis_sync: sync_redis.Redis,
                                                         clock: Clock, redis_url: str, tmp_path: Path) -> None:
    await scripted_promises(insights_service, redis_sync, clock)
    target = tmp_path / "week.csv"
    result = subprocess.run(
        ["make", "--no-print-directory", "insights", "PERIOD=2026-02-24..2026-03-02", f"CSV={target}"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": redis_url, "HANDOFF_REDIS_URL": redis_url},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0]: line.split()[-5:] for line in result.stdout.splitlines()}
    # promise, made, kept, late, cancelled, open
    assert rows["reply (handoff cases)"] == ["0", "0", "0", "0", "0"]
    assert rows["replacement"] == ["1", "0", "1", "0", "0"]
    assert rows["redelivery"] == ["1", "1", "0", "0", "0"]
    assert rows["return"] == ["1", "0", "0", "1", "0"]
    assert rows["goodwill"] == ["1", "0", "0", "0", "1"]
    assert "case reply promises: made 0, kept 0, late 0, open 0" in result.stdout
    with (tmp_path / "week-promises.csv").open() as handle:
        from_csv = {row["promise"]: row for row in csv.DictReader(handle)}
    assert from_csv["refund"]["late"] == "1" and from_csv["privacy"]["late"] == "1"
    assert target.exists()


@pytest.mark.asyncio
async def test_erasure_forgets_the_conversation_of_a_promise_not_counted_yet(
        insights_service: Service, redis_sync: sync_redis.Redis, clock: Clock) -> None:
    ids = await scripted_promises(insights_service, redis_sync, clock)
    backend = Backend(redis_sync)
    backend.next_id = 500
    # A promise made in a conversation whose events never came: it waits to be counted.
    quiet = Conversation(redis_sync, "nl", "rest", T0)
    waiting = backend.made("callback", T0 + 5 * HOUR, T0 + 3 * HOUR, quiet)
    await consumed(redis_sync)
    state = redis_sync.get(keys.insights_promise(str(waiting)))
    assert quiet.id in state and redis_sync.zrange(keys.insights_promises_unattributed(), 0, -1) == [str(waiting)]
    admin = await signed_in(insights_service, "ana", "admin")
    response = await admin.post("/api/admin/customers/48213377/erase",
                                json={"conversations": [quiet.id, ids["refund_conversation"]]})
    assert response.status_code == 200, response.text
    # The waiting promise no longer names its conversation; the stream's entries naming either are gone.
    assert quiet.id not in redis_sync.get(keys.insights_promise(str(waiting)))
    streamed = str(redis_sync.xrange(keys.PROMISE_EVENTS_STREAM))
    assert quiet.id not in streamed and ids["refund_conversation"] not in streamed
    # Eleven entries; the two "made" naming the conversations went (a "kept" names none).
    assert redis_sync.xlen(keys.PROMISE_EVENTS_STREAM) == 11 - 2
    # It is counted all the same once its time to wait is over, without language, channel or topic.
    await insights_service.app.state.insights.sweep(now=(T0 + 3 * HOUR).timestamp() + ATTRIBUTION_GRACE_SECONDS)
    report = (await admin.get("/api/insights")).json()
    assert figures(report)["callback"] == {"made": 1, "kept": 0, "late": 0, "cancelled": 0, "open": 1}
    assert redis_sync.hget(keys.insights_day(DAY), "backend_promise_made|unknown|unknown|unspecified|callback") == "1"
    # The counts made before the erasure stay: they hold no personal data.
    assert figures(report)["refund"]["made"] == 1


@pytest.mark.asyncio
async def test_retention_trims_the_promise_stream(insights_service: Service, redis_sync: sync_redis.Redis) -> None:
    backend = Backend(redis_sync)
    backend.made("refund", T0 + HOUR, T0)
    aggregator = insights_service.app.state.insights
    assert await aggregator.sweep_retention(now=datetime.now().timestamp() + 31 * 86400) >= 1
    assert redis_sync.xlen(keys.PROMISE_EVENTS_STREAM) == 0


# --- the pure aggregation ------------------------------------------------------------------------


def promise_events(*items: tuple, start: int = 1) -> List[PromiseEvent]:
    """``(event, at)`` pairs of promise 7 (a refund due at 1700003600) in stream order."""
    return [PromiseEvent(f"{1700000000000 + i}-0", event, "7", "refund", 1700003600.0, at,
                         "c1" if event == "made" else None) for i, (event, at) in enumerate(items, start)]


CAUGHT_UP = {"last_id": "1700000000005-0", "language": "en", "channel": "rest", "contact": {"topic": "request_refund"}}


def counted(effects) -> Dict[str, int]:
    return {name: n for (_, name), n in effects.counts.items() if n}


def test_a_promise_read_twice_counts_once() -> None:
    batch = promise_events(("made", 1700000000.0), ("kept", 1700001000.0))
    state, effects = advance_promise(None, batch, conversation=CAUGHT_UP)
    assert counted(effects) == {"backend_promise_made|en|rest|request_refund|refund": 1,
                                "backend_promise_kept|en|rest|request_refund|refund": 1}
    again, repeated = advance_promise(state, batch, conversation=CAUGHT_UP)
    assert again == state and repeated.empty()


def test_a_promise_waits_for_its_conversation_then_for_the_grace_time() -> None:
    behind = {**CAUGHT_UP, "last_id": "1699999999000-0"}
    state, effects = advance_promise(None, promise_events(("made", 1700000000.0)), conversation=behind)
    assert effects.empty() and state["conversation_id"] == "c1" and state["dims"] is None
    _, still = advance_promise(state, [], conversation=behind, now=1700000000.0 + ATTRIBUTION_GRACE_SECONDS - 1)
    assert still.empty()
    later, counted_now = advance_promise(state, [], conversation=behind, now=1700000000.0 + ATTRIBUTION_GRACE_SECONDS)
    assert counted(counted_now) == {"backend_promise_made|en|rest|request_refund|refund": 1}
    assert later["conversation_id"] is None


def test_late_by_the_sweep_then_a_settlement_from_before_the_due_time_corrects_it() -> None:
    state, _ = advance_promise(None, promise_events(("made", 1700000000.0)), conversation=CAUGHT_UP)
    state, late = advance_promise(state, [], now=1700003601.0)
    assert counted(late) == {"backend_promise_late|en|rest|request_refund|refund": 1}
    # The backend kept it in time; its event was only read now.
    state, corrected = advance_promise(state, promise_events(("kept", 1700003000.0), start=5))
    assert counted(corrected) == {"backend_promise_late|en|rest|request_refund|refund": -1,
                                  "backend_promise_kept|en|rest|request_refund|refund": 1}
    # A second settlement changes nothing: the first one counts.
    _, ignored = advance_promise(state, promise_events(("broken", 1700003100.0), start=6))
    assert ignored.empty()


def test_a_settlement_of_a_promise_never_seen_is_ignored_and_bad_entries_are_skipped() -> None:
    assert advance_promise(None, promise_events(("kept", 1700000000.0)))[0] is None
    assert parse_promise_entry("1-0", {}) is None
    assert parse_promise_entry("1-0", {"event": "made", "promise_id": "1", "due_at": "tomorrow", "at": "now"}) is None
    parsed = parse_promise_entry("1-0", {"event": "made", "promise_id": "1", "kind": "Refund!",
                                         "due_at": "2026-03-02T11:00:00+00:00", "at": "2026-03-02T10:00:00Z"})
    assert (parsed.kind, parsed.due - parsed.at, parsed.conversation_id) == ("refund", 3600.0, None)


@pytest.mark.asyncio
async def test_a_promise_read_before_its_turn_is_counted_once_the_turn_is_in(
        insights_service: Service, redis_sync: sync_redis.Redis) -> None:
    aggregator = insights_service.app.state.insights
    start = T0.timestamp()
    made = PromiseEvent("1772445600000-0", "made", "9", "refund", start + 3600, start, "c-turn")
    await aggregator.record_promises([made])
    assert redis_sync.zrange(keys.insights_promises_unattributed(), 0, -1) == ["9"]
    await aggregator.attribute_waiting()  # the turn is not in yet: it waits
    assert redis_sync.zrange(keys.insights_promises_unattributed(), 0, -1) == ["9"]
    await aggregator.record([
        ("1772445600005-0", "c-turn", start + 1, {"event": "user", "text": "geld terug", "input_channel": "rest",
                                                 "parse_data": {"language": "nl"}}),
        ("1772445600006-0", "c-turn", start + 1,
         {"event": "slot", "name": "problem_intent", "value": "request_refund"})])
    await aggregator.attribute_waiting()
    assert redis_sync.zcard(keys.insights_promises_unattributed()) == 0
    assert redis_sync.hgetall(keys.insights_day(DAY)) == {
        "contacts|nl|rest|request_refund|": "1", "backend_promise_made|nl|rest|request_refund|refund": "1"}
