"""Erasure: retention of transcripts and closed cases, and erasure of one customer (AVG/GDPR).

Rasa's trackers live in the same Redis under ``helder:tracker:<conversation>``; they are written
here the way Rasa's Redis tracker store writes them (JSON with the events).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
import redis as sync_redis

from contract import keys
from contract.keys import tracker_key
from handoff.app import create_app
from handoff.erasure import main as erasure_main
from handoff.models import TranscriptLine
from handoff.settings import Settings
from tests.fakes.packets import packet
from tests.handoff.conftest import Clock, Service, async_fixture, running

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)  # a Monday, within opening hours
SANNE, PIETER = "48213377", "51937204"
SANNE_PHONE = "+31 6 12345678"
SANNE_WA = "31612345678"


@async_fixture
async def admin_service(settings: Settings, redis_sync: sync_redis.Redis, clock: Clock,
                        tmp_path: Path) -> AsyncIterator[Service]:
    """The app with eva as admin and a log directory an erasure cleans."""
    config = settings.model_copy(update={"admins": "eva", "log_dir": str(tmp_path / "log"),
                                         "retention_days": 30})
    (tmp_path / "log").mkdir()
    async with running(create_app(config, clock=clock)) as started:
        yield started


def store_tracker(redis_sync: sync_redis.Redis, conversation_id: str, customer_id: str | None, ttl: int | None = None) -> None:
    """A tracker as Rasa's RedisTrackerStore stores it."""
    events = [{"event": "user", "text": "hallo", "timestamp": T0.timestamp()}]
    if customer_id:
        events.append({"event": "slot", "name": "customer_id", "value": customer_id, "timestamp": T0.timestamp()})
    redis_sync.set(tracker_key(conversation_id), json.dumps({"name": conversation_id, "events": events}), ex=ttl)


async def add_line(service: Service, conversation_id: str, text: str, at: datetime = T0) -> None:
    line = TranscriptLine.of("customer", text, at.isoformat())
    assert await service.store.record_line(conversation_id, f"{conversation_id}:{text}", line, at.timestamp())


async def open_case(service: Service, conversation_id: str, customer_id: str = SANNE, channel: str = "socketio") -> str:
    body = packet(conversation_id, channel=channel)
    body["identity"]["customer_id"] = customer_id
    response = await service.bot().post("/api/cases", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()["case_id"]


async def resolve(service: Service, agent, case_id: str) -> None:
    response = await agent.post(f"/api/cases/{case_id}/resolve", json={"outcome": "solved"})
    assert response.status_code == 200, response.text


# --- retention ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_closed_cases_and_old_transcripts_expire_open_cases_and_unkept_promises_stay(
    admin_service: Service, redis_sync: sync_redis.Redis, clock: Clock,
) -> None:
    service = admin_service
    clock.set(T0)
    eva = await service.agent("eva", present=True)
    closed = await open_case(service, "conv-closed")              # an agent is there: no promise
    open_one = await open_case(service, "conv-open")
    await resolve(service, eva, closed)
    await service.store.set_absent("eva")
    promised = await open_case(service, "conv-promised")           # nobody there: a reply promise
    assert redis_sync.hget(keys.case(promised), "promise")
    await resolve(service, eva, promised)                          # closed, promise never kept
    await eva.post(f"/api/cases/{closed}/notes", json={"text": "belde terug"})
    for conversation in ("conv-closed", "conv-open", "conv-promised", "conv-no-case"):
        await add_line(service, conversation, f"regel van {conversation}")
    store_tracker(redis_sync, "conv-open", SANNE, ttl=3600)
    redis_sync.xadd(keys.EVENTS_STREAM, {"sender_id": "conv-closed", "event": "{}"},
                    id=f"{int(T0.timestamp() * 1000)}-0")
    erasure = service.app.state.erasure

    clock.set(T0 + timedelta(days=29))
    report = await erasure.sweep()
    assert (report.cases, report.conversations, report.stream_entries) == (0, 0, 0)
    assert redis_sync.exists(keys.case(closed), keys.transcript("conv-no-case")) == 2

    clock.set(T0 + timedelta(days=31))
    report = await erasure.sweep()
    assert report.cases == 1 and report.conversations == 2 and report.stream_entries == 1
    # the closed case, its notes and the transcripts without a case are gone
    assert not redis_sync.exists(keys.case(closed), keys.case_notes(closed), keys.transcript("conv-closed"),
                                 keys.transcript_lines("conv-closed"), keys.transcript("conv-no-case"),
                                 keys.conversation("conv-no-case"))
    assert closed not in redis_sync.zrange(keys.cases_by_status("resolved"), 0, -1)
    assert redis_sync.zscore(keys.conversations(), "conv-no-case") is None
    assert redis_sync.xlen(keys.EVENTS_STREAM) == 0
    # the open case and the unkept promise stay, with their transcripts; the open one's tracker
    # no longer expires
    assert (await eva.get(f"/api/cases/{open_one}")).status_code == 200
    assert (await eva.get(f"/api/cases/{promised}")).status_code == 200
    assert redis_sync.exists(keys.transcript("conv-open"), keys.transcript("conv-promised")) == 2
    assert redis_sync.ttl(tracker_key("conv-open")) == -1
    assert [c["id"] for c in (await eva.get("/api/cases?status=resolved")).json()] == [promised]


@pytest.mark.asyncio
async def test_zero_retention_keeps_everything(admin_service: Service, redis_sync, clock: Clock) -> None:
    clock.set(T0)
    eva = await admin_service.agent("eva", present=True)
    case_id = await open_case(admin_service, "conv-keep")
    await resolve(admin_service, eva, case_id)
    admin_service.app.state.erasure.days = 0
    clock.set(T0 + timedelta(days=3650))
    await admin_service.app.state.erasure.sweep()
    assert redis_sync.exists(keys.case(case_id))


# --- erasure --------------------------------------------------------------------------------------


async def two_customers(service: Service, redis_sync: sync_redis.Redis, log_dir: Path) -> dict:
    """Sanne: a web conversation with a case and a note, a WhatsApp one, a conversation the bot
    handled alone (only the tracker knows her); Pieter: a conversation with a case."""
    clock_free = {}
    eva = await service.agent("eva", present=True)
    clock_free["sanne_case"] = await open_case(service, "web-sanne-0123456789abcdef")
    clock_free["sanne_wa_case"] = await open_case(service, SANNE_WA, channel="whatsapp")
    clock_free["pieter_case"] = await open_case(service, "web-pieter-0123456789abcdef", customer_id=PIETER)
    await eva.post(f"/api/cases/{clock_free['sanne_case']}/claim")
    await eva.post(f"/api/cases/{clock_free['sanne_case']}/notes", json={"text": "klant wil bellen"})
    await eva.post(f"/api/cases/{clock_free['pieter_case']}/notes", json={"text": "pieter notitie"})
    for conversation, customer in (("web-sanne-0123456789abcdef", SANNE), (SANNE_WA, SANNE),
                                   ("bot-only-sanne-0123456789", SANNE), ("web-pieter-0123456789abcdef", PIETER)):
        store_tracker(redis_sync, conversation, customer)
        await add_line(service, conversation, f"hallo van {customer}")
        redis_sync.xadd(keys.EVENTS_STREAM, {"sender_id": conversation, "event": "{}"})
    redis_sync.set(f"whatsapp:window:{SANNE_WA}", "1700000000")
    (log_dir / "rasa.log").write_text(
        f"INFO user {SANNE} in web-sanne-0123456789abcdef\nINFO wa +{SANNE_WA}\n"
        f"INFO user {PIETER} in web-pieter-0123456789abcdef\n")
    return clock_free


def assert_erased_and_intact(redis_sync: sync_redis.Redis, ids: dict, log_dir: Path) -> None:
    sanne_conversations = ("web-sanne-0123456789abcdef", SANNE_WA, "bot-only-sanne-0123456789")
    for conversation in sanne_conversations:
        assert not redis_sync.exists(tracker_key(conversation), keys.transcript(conversation),
                                     keys.transcript_lines(conversation), keys.conversation(conversation),
                                     keys.open_case(conversation), keys.conversation_cases(conversation))
        assert redis_sync.zscore(keys.conversations(), conversation) is None
    for case_id in (ids["sanne_case"], ids["sanne_wa_case"]):
        assert not redis_sync.exists(keys.case(case_id), keys.case_notes(case_id))
        assert all(case_id not in redis_sync.zrange(keys.cases_by_status(s), 0, -1) for s in keys.CASE_STATUSES)
        assert case_id not in redis_sync.zrange(keys.queue(), 0, -1)
    assert not redis_sync.exists(f"whatsapp:window:{SANNE_WA}")
    senders = [fields["sender_id"] for _, fields in redis_sync.xrange(keys.EVENTS_STREAM)]
    assert senders == ["web-pieter-0123456789abcdef"]
    dump = "".join(redis_sync.dump(k).decode("latin-1") if redis_sync.type(k) != "stream" else ""
                   for k in redis_sync.keys("*"))
    assert SANNE not in dump and SANNE_WA not in dump
    # Pieter is untouched
    pieter = "web-pieter-0123456789abcdef"
    assert redis_sync.exists(tracker_key(pieter), keys.transcript(pieter), keys.case(ids["pieter_case"]),
                             keys.case_notes(ids["pieter_case"])) == 4
    assert ids["pieter_case"] in redis_sync.zrange(keys.queue(), 0, -1)
    log = (log_dir / "rasa.log").read_text()
    assert SANNE not in log and "web-sanne" not in log and PIETER in log and pieter in log


@pytest.mark.asyncio
async def test_admin_erases_one_customer_everywhere_and_the_other_stays(
    admin_service: Service, redis_sync: sync_redis.Redis, tmp_path: Path,
) -> None:
    ids = await two_customers(admin_service, redis_sync, tmp_path / "log")
    eva = await admin_service.agent("eva")
    response = await eva.post(f"/api/admin/customers/{SANNE}/erase", json={"phones": [SANNE_PHONE]})
    assert response.status_code == 200, response.text
    report = response.json()
    assert sorted(report["conversations"]) == sorted(["web-sanne-0123456789abcdef", SANNE_WA, "bot-only-sanne-0123456789"])
    assert sorted(report["cases"]) == sorted([ids["sanne_case"], ids["sanne_wa_case"]])
    assert report["trackers"] == 3 and report["stream_entries"] == 3
    assert_erased_and_intact(redis_sync, ids, tmp_path / "log")
    assert (await eva.get(f"/api/cases/{ids['sanne_case']}")).status_code == 404
    assert [c["conversation_id"] for c in (await eva.get("/api/conversations")).json()] == ["web-pieter-0123456789abcdef"]


@pytest.mark.asyncio
async def test_erasure_is_for_admins_only(admin_service: Service, redis_sync: sync_redis.Redis) -> None:
    store_tracker(redis_sync, "conv-x", SANNE)
    tom = await admin_service.agent("tom")
    assert (await tom.post(f"/api/admin/customers/{SANNE}/erase")).status_code == 403
    eva = await admin_service.agent("eva")
    del eva.headers["X-CSRF-Token"]
    assert (await eva.post(f"/api/admin/customers/{SANNE}/erase")).status_code == 403
    assert (await admin_service.client().post(f"/api/admin/customers/{SANNE}/erase")).status_code == 401
    assert (await admin_service.bot().post(f"/api/admin/customers/{SANNE}/erase")).status_code == 401
    assert redis_sync.exists(tracker_key("conv-x"))


def test_erase_command(redis_url: str, redis_sync: sync_redis.Redis, tmp_path: Path, capsys) -> None:
    store_tracker(redis_sync, "cli-sanne", SANNE)
    store_tracker(redis_sync, "cli-pieter", PIETER)
    store_tracker(redis_sync, "cli-backend-promise", None)  # known only from the backend's promise
    log = tmp_path / "actions.log"
    log.write_text(f"customer {SANNE} verified; customer {PIETER} verified\n")
    code = erasure_main(["--redis-url", redis_url, "erase", "--customer", SANNE, "--logs", str(log),
                         "--conversation", "cli-backend-promise"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["conversations"] == ["cli-backend-promise", "cli-sanne"] and report["trackers"] == 2
    assert not redis_sync.exists(tracker_key("cli-sanne")) and redis_sync.exists(tracker_key("cli-pieter"))
    assert log.read_text() == f"customer [erased] verified; customer {PIETER} verified\n"
