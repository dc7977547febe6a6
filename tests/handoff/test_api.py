"""The handoff service through its HTTP API, with a private Redis and a fake Rasa.

Each test reads as what an agent or the bot would notice: who may do what, what the customer is
promised, what Rasa is asked to do, and what the console shows live.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis as sync_redis
from pydantic import ValidationError
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from contract import keys
from handoff.agents import hash_password, verify_password
from handoff.app import create_app
from handoff.consumer import stop_task
from handoff.settings import OpeningHours, Settings
from tests.fakes.packets import packet
from tests.handoff.conftest import (
    API_TOKEN, BOT_HEADERS, NAMES, PASSWORDS, RASA_SECRET, SESSION_SECRET, FakeRasa, Service, eventually, running,
)

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx still works and is what the service uses.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.timeout(120)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
ROOT = Path(__file__).resolve().parents[2]


async def open_case(service: Service, conversation_id: str, **changes) -> httpx.Response:
    return await service.bot().post("/api/cases", json=packet(conversation_id, **changes))


async def claimed_case(service: Service, conversation_id: str, agent: httpx.AsyncClient) -> str:
    case_id = (await open_case(service, conversation_id)).json()["case_id"]
    response = await agent.post(f"/api/cases/{case_id}/claim")
    assert response.status_code == 200, response.text
    return case_id


def xadd(redis_sync: sync_redis.Redis, conversation_id: str, event: dict) -> None:
    """What Rasa's event broker does for each tracker event."""
    redis_sync.xadd(keys.EVENTS_STREAM, {"sender_id": conversation_id, "event": json.dumps(event)})


# --- settings, passwords, opening hours -------------------------------------------------------------

def test_placeholder_secrets_are_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HANDOFF_ENV", "HANDOFF_API_TOKEN", "HANDOFF_RASA_JWT_SECRET", "HANDOFF_SESSION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="HANDOFF_RASA_JWT_SECRET"):
        Settings()
    monkeypatch.setenv("HANDOFF_RASA_JWT_SECRET", RASA_SECRET)
    monkeypatch.setenv("HANDOFF_SESSION_SECRET", SESSION_SECRET)
    monkeypatch.setenv("HANDOFF_API_TOKEN", "change-me")
    with pytest.raises(ValidationError, match="HANDOFF_API_TOKEN"):
        Settings()
    monkeypatch.setenv("HANDOFF_API_TOKEN", API_TOKEN)
    assert Settings().api_token.get_secret_value() == API_TOKEN
    monkeypatch.setenv("HANDOFF_API_TOKEN", "change-me")
    monkeypatch.setenv("HANDOFF_ENV", "local")
    assert Settings().is_local


def test_settings_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HANDOFF_"):
            monkeypatch.delenv(name)
    settings = Settings(env="local")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert (settings.host, settings.port, settings.session_hours, settings.average_handling_minutes) == (
        "127.0.0.1", 8000, 12, 6)
    with pytest.raises(ValidationError, match="opening hours"):
        Settings(env="local", opening_hours="mon-fri 9-5")


def test_password_hashes_are_salted_scrypt() -> None:
    first, second = hash_password("geheim-wachtwoord"), hash_password("geheim-wachtwoord")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("geheim-wachtwoord", first)
    assert not verify_password("geheim-wachtwoorD", first)
    assert not verify_password("anything", "not a hash")


def test_opening_hours_next_opening_and_daylight_saving() -> None:
    hours = OpeningHours.parse("mon-fri 08:00-21:00, sat 09:00-17:00")
    saturday_evening = datetime(2024, 6, 1, 18, 0, tzinfo=AMSTERDAM)
    assert not hours.is_open(saturday_evening)
    assert hours.next_opening(saturday_evening) == datetime(2024, 6, 3, 8, 0, tzinfo=AMSTERDAM)
    assert hours.is_open(datetime(2024, 6, 5, 10, 0, tzinfo=AMSTERDAM))
    assert hours.next_opening(datetime(2024, 6, 5, 7, 0, tzinfo=AMSTERDAM)) == datetime(
        2024, 6, 5, 8, 0, tzinfo=AMSTERDAM)
    # Saturday 30 March 2024 after closing → Monday 1 April, the first day of summer time (06:00 UTC).
    assert hours.next_opening(datetime(2024, 3, 30, 20, 0, tzinfo=AMSTERDAM)) == datetime(
        2024, 4, 1, 6, 0, tzinfo=timezone.utc)


# --- authentication ---------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_login_right_and_wrong_password(service: Service) -> None:
    eva = await service.agent("eva")
    me = await eva.get("/api/me")
    assert me.status_code == 200
    assert me.json()["agent"] == {"username": "eva", "name": "Eva de Jong", "role": "agent"}
    assert me.json()["csrf_token"] == eva.headers["X-CSRF-Token"]

    stranger = service.client()
    wrong = await stranger.post("/auth/login", json={"username": "eva", "password": "not her password"})
    unknown = await stranger.post("/auth/login", json={"username": "nobody", "password": "whatever1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "handoff_session" not in stranger.cookies
    assert (await stranger.get("/api/queue")).status_code == 401


@pytest.mark.asyncio
async def test_session_cookie_is_httponly_strict_and_logout_ends_it(service: Service) -> None:
    client = service.client()
    await service.agent("eva")
    response = await client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]})
    cookie = response.headers["set-cookie"].lower()
    assert "handoff_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    assert "secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure (next test)
    old_cookie = client.cookies["handoff_session"]
    assert (await client.post("/auth/logout")).status_code == 200
    # The cookie value alone no longer works: the session ended on the server.
    replay = service.client()
    replay.cookies.set("handoff_session", old_cookie)
    assert (await replay.get("/api/me")).status_code == 401
    forged = service.client()
    forged.cookies.set("handoff_session", "forged.value.here")
    assert (await forged.get("/api/me")).status_code == 401


@pytest.mark.asyncio
async def test_session_cookie_is_secure_over_https(settings: Settings, redis_sync: sync_redis.Redis) -> None:
    async with running(create_app(settings)) as service:
        await service.agent("eva")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="https://testserver")
        async with client:
            response = await client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]})
            assert "secure" in response.headers["set-cookie"].lower()
            assert (await client.get("/api/me")).status_code == 200


@pytest.mark.asyncio
async def test_changes_need_the_csrf_token(service: Service) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-csrf")).json()["case_id"]
    token = eva.headers.pop("X-CSRF-Token")
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 403
    assert (await eva.post(f"/api/cases/{case_id}/claim", headers={"X-CSRF-Token": "wrong"})).status_code == 403
    assert (await eva.get("/api/queue")).status_code == 200  # reading needs no token
    assert (await eva.post(f"/api/cases/{case_id}/claim", headers={"X-CSRF-Token": token})).status_code == 200


@pytest.mark.asyncio
async def test_agent_endpoints_need_a_session(service: Service) -> None:
    anonymous = service.client()
    for method, path in [("GET", "/api/queue"), ("GET", "/api/cases"), ("GET", "/api/cases/x"),
                         ("POST", "/api/cases/x/claim"), ("GET", "/api/conversations"),
                         ("POST", "/api/conversations/x/takeover"), ("GET", "/api/me")]:
        assert (await anonymous.request(method, path)).status_code == 401, path
    page = await anonymous.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"


@pytest.mark.asyncio
async def test_bot_token_is_required_to_open_a_case(service: Service) -> None:
    client = service.client()
    assert (await client.post("/api/cases", json=packet("conv-token"))).status_code == 401
    wrong = await client.post("/api/cases", json=packet("conv-token"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # An agent's session is not the bot's token.
    eva = await service.agent("eva")
    assert (await eva.post("/api/cases", json=packet("conv-token"))).status_code == 401
    assert (await client.post("/api/cases", json=packet("conv-token"), headers=BOT_HEADERS)).status_code == 201


@pytest.mark.asyncio
async def test_health(service: Service) -> None:
    client = service.client()
    # Ready once Redis confirmed the push subscription (the hub reads that right after start-up).
    response = await eventually(lambda: _ready(client))
    assert response.json() == {"status": "ok", "redis": True, "pushes": True}


async def _ready(client: httpx.AsyncClient) -> httpx.Response | None:
    response = await client.get("/health")
    return response if response.status_code == 200 else None


@pytest.mark.asyncio
async def test_health_is_degraded_while_pushes_do_not_reach_the_consoles(service: Service) -> None:
    client = service.client()
    await eventually(lambda: _ready(client))
    # This instance stops listening (as the app does when it shuts down): its consoles miss pushes.
    hub = service.app.state.hub
    hub.stopping = True
    await stop_task(next(t for t in asyncio.all_tasks() if t.get_name() == "handoff-push"))
    await hub.aclose()
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "redis": True, "pushes": False}


# --- opening cases, queue, promises -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_open_case_is_idempotent_per_conversation(service: Service) -> None:
    await service.store.set_present("eva")
    await service.agent("eva")
    first = await open_case(service, "conv-idem")
    again = await open_case(service, "conv-idem", reason="second_miss")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["case_id"] == again.json()["case_id"]
    # Ten retries at once still make one case.
    answers = await asyncio.gather(*(open_case(service, "conv-race") for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["case_id"] for a in answers}) == 1
    eva = await service.agent("eva")
    cases = (await eva.get("/api/cases")).json()
    assert sorted(c["conversation_id"] for c in cases) == ["conv-idem", "conv-race"]


@pytest.mark.asyncio
async def test_identity_verified_while_waiting_reaches_the_case_card(service: Service) -> None:
    unknown = {"customer_id": None, "name": None, "verified_by": None, "verified_at": None}
    case_id = (await open_case(service, "conv-later-id", identity=unknown)).json()["case_id"]
    eva = await service.agent("eva")
    assert (await eva.get(f"/api/cases/{case_id}")).json()["packet"]["identity"]["customer_id"] is None
    emily = {"customer_id": "60418825", "name": "Emily Clarke", "verified_by": "customer_number+postcode",
             "verified_at": 1764700000.0}
    again = await open_case(service, "conv-later-id", identity=emily)
    assert again.status_code == 200 and again.json()["case_id"] == case_id
    card = (await eva.get(f"/api/cases/{case_id}")).json()["packet"]
    assert card["identity"]["customer_id"] == "60418825" and card["identity"]["name"] == "Emily Clarke"
    assert card["problem_description"] == "ik heb mijn laptop nooit ontvangen"  # the rest is the bot's first packet
    # The first verified identity stands: a later packet cannot replace it.
    await open_case(service, "conv-later-id", identity={**emily, "customer_id": "48213377", "name": "Sanne"})
    assert (await eva.get(f"/api/cases/{case_id}")).json()["packet"]["identity"]["customer_id"] == "60418825"


@pytest.mark.asyncio
async def test_queued_positions_and_estimates_with_available_agents(service: Service) -> None:
    await service.agent("eva", present=True)
    tom = await service.agent("tom", present=True)
    answers = [(await open_case(service, f"conv-q{i}")).json() for i in range(3)]
    assert [a["status"] for a in answers] == ["queued"] * 3
    assert [a["position"] for a in answers] == [1, 2, 3]
    # ceil(position × 6 minutes / 2 agents)
    assert [a["estimate_minutes"] for a in answers] == [3, 6, 9]
    assert all(a["reply_by"] is None and a["channel"] == "socketio" for a in answers)

    queue = (await tom.get("/api/queue")).json()
    assert [c["conversation_id"] for c in queue] == ["conv-q0", "conv-q1", "conv-q2"]
    assert [c["position"] for c in queue] == [1, 2, 3]
    assert all(c["status"] == "queued" and c["waiting_seconds"] >= 0 and not c["overdue"] for c in queue)
    assert queue[0]["packet"]["problem_description"] == "ik heb mijn laptop nooit ontvangen"

    await tom.post(f"/api/cases/{queue[0]['id']}/claim")
    queue = (await tom.get("/api/queue")).json()
    assert [(c["conversation_id"], c["position"]) for c in queue] == [("conv-q1", 1), ("conv-q2", 2)]


@pytest.mark.asyncio
async def test_no_agents_gives_a_stored_promise_by_opening_hours(service: Service, clock) -> None:
    await service.agent("eva")  # exists but has no console open: not available
    clock.set(datetime(2024, 6, 1, 18, 0, tzinfo=AMSTERDAM))  # Saturday after closing
    answer = (await open_case(service, "conv-weekend")).json()
    assert answer["status"] == "no_agents"
    assert answer["estimate_minutes"] is None and answer["position"] == 1
    monday_nine = datetime(2024, 6, 3, 9, 0, tzinfo=AMSTERDAM)  # opens 08:00, + 1 hour
    assert datetime.fromisoformat(answer["reply_by"]) == monday_nine

    clock.set(datetime(2024, 6, 5, 10, 30, tzinfo=AMSTERDAM))  # Wednesday, open now
    answer = (await open_case(service, "conv-weekday")).json()
    assert answer["status"] == "no_agents"
    assert datetime.fromisoformat(answer["reply_by"]) == datetime(2024, 6, 5, 11, 30, tzinfo=AMSTERDAM)

    eva = await service.agent("eva")
    case = (await eva.get(f"/api/cases/{answer['case_id']}")).json()
    assert case["promise"]["kind"] == "reply" and case["promise"]["channel"] == "socketio"
    assert datetime.fromisoformat(case["promise"]["due_at"]) == datetime.fromisoformat(answer["reply_by"])
    assert case["overdue"] is False
    clock.set(datetime(2024, 6, 5, 10, 45, tzinfo=AMSTERDAM))
    assert (await eva.get(f"/api/cases/{answer['case_id']}")).json()["waiting_seconds"] == 15 * 60

    clock.set(datetime(2024, 6, 5, 11, 31, tzinfo=AMSTERDAM))  # promise missed
    queue = {c["id"]: c for c in (await eva.get("/api/queue")).json()}
    assert queue[answer["case_id"]]["overdue"] is True

    # The agent's first reply keeps the promise; then it is no longer overdue.
    await eva.post(f"/api/cases/{answer['case_id']}/claim")
    assert (await eva.get(f"/api/cases/{answer['case_id']}")).json()["overdue"] is True
    await eva.post(f"/api/cases/{answer['case_id']}/messages", json={"text": "Ik help u nu verder."})
    case = (await eva.get(f"/api/cases/{answer['case_id']}")).json()
    assert case["overdue"] is False and case["promise"]["kept_at"]


@pytest.mark.asyncio
async def test_websocket_presence_makes_an_agent_available(settings: Settings, redis_sync: sync_redis.Redis) -> None:
    """Presence comes from an open console: no socket → no_agents, socket → queued, closed → no_agents."""
    app = create_app(settings)
    with TestClient(app) as client:
        client.portal.call(_add_agent, app, "eva")
        assert client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]}).status_code == 200
        bot = {"Authorization": f"Bearer {API_TOKEN}"}
        assert client.post("/api/cases", json=packet("conv-p1"), headers=bot).json()["status"] == "no_agents"
        with client.websocket_connect("/ws"):
            assert redis_sync.ttl(keys.presence("eva")) > 0
            answer = client.post("/api/cases", json=packet("conv-p2"), headers=bot).json()
            assert answer["status"] == "queued" and answer["estimate_minutes"] == 12  # position 2 × 6 / 1
        deadline = time.monotonic() + 5
        while redis_sync.exists(keys.presence("eva")):
            assert time.monotonic() < deadline, "presence not cleared after the socket closed"
            time.sleep(0.05)
        assert client.post("/api/cases", json=packet("conv-p3"), headers=bot).json()["status"] == "no_agents"


async def _add_agent(app, username: str) -> None:
    from handoff.agents import add_agent

    await add_agent(app.state.store, username, NAMES[username], PASSWORDS[username])


# --- claiming, messages, notes, hand-back, resolve --------------------------------------------------

@pytest.mark.asyncio
async def test_claim_is_atomic(service: Service) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = (await open_case(service, "conv-claim")).json()["case_id"]
    first, second = await asyncio.gather(eva.post(f"/api/cases/{case_id}/claim"),
                                         tom.post(f"/api/cases/{case_id}/claim"))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    owner = winner.json()["owner"]
    assert winner.json()["status"] == "human" and winner.json()["owner_name"] == NAMES[owner]
    assert loser.json() == {"detail": f"claimed by {NAMES[owner]}"}
    # Claiming again is fine for the owner.
    owner_client = eva if owner == "eva" else tom
    again = await owner_client.post(f"/api/cases/{case_id}/claim")
    assert again.status_code == 200 and again.json()["owner"] == owner
    assert (await eva.get("/api/queue")).json() == []


# What a first claim sends to Rasa: the agent's name, then the "has joined" action.
ANNOUNCE = ("agent_name slot", "action_agent_joined")


@pytest.mark.asyncio
async def test_a_claim_tells_the_customer_who_joined(service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-joined")).json()["case_id"]
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200  # again: no second notice
    calls = [(c["path"], c["json"]) for c in fake_rasa.calls("conv-joined")]
    assert calls == [("/conversations/conv-joined/tracker/events",
                      {"event": "slot", "name": "agent_name", "value": "Eva de Jong"}),
                     ("/conversations/conv-joined/execute", {"name": "action_agent_joined"})]


@pytest.mark.asyncio
async def test_owner_messages_reach_rasa_with_the_agent_name(service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = await claimed_case(service, "conv-msg", eva)
    sent = await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Goedemiddag, ik ben Eva."})
    assert sent.status_code == 200, sent.text
    assert sent.json()["from"] == "agent" and sent.json()["agent_name"] == "Eva de Jong"

    (call,) = [c for c in fake_rasa.calls("conv-msg") if c["path"].endswith("/tracker/events")
               and c["json"].get("event") == "bot"]
    assert call["role"] == "admin"
    assert call["query"] == {"execute_side_effects": "true", "output_channel": "latest"}
    assert call["json"]["event"] == "bot" and call["json"]["text"] == "Goedemiddag, ik ben Eva."
    assert call["json"]["metadata"]["agent_id"] == "eva"
    assert call["json"]["metadata"]["agent_name"] == "Eva de Jong"

    lines = (await eva.get("/api/conversations/conv-msg/transcript")).json()
    assert lines[-1] == {"from": "agent", "text": "Goedemiddag, ik ben Eva.", "at": sent.json()["at"],
                         "agent_name": "Eva de Jong"}

    other = await tom.post(f"/api/cases/{case_id}/messages", json={"text": "Ik neem het over"})
    assert other.status_code == 403
    assert len([c for c in fake_rasa.calls("conv-msg") if c["json"] and c["json"].get("event") == "bot"]) == 1


@pytest.mark.asyncio
async def test_message_text_is_validated(service: Service) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-text", eva)
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {}, {"text": None}):
        assert (await eva.post(f"/api/cases/{case_id}/messages", json=body)).status_code == 422, body
    assert (await eva.post(f"/api/cases/{case_id}/messages", json={"text": "x" * 4000})).status_code == 200
    broken = await eva.post(f"/api/cases/{case_id}/messages", content=b"{not json",
                            headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert (await service.bot().post("/api/cases", content=b"{", headers={"Content-Type": "application/json"})
            ).status_code == 422
    assert (await service.bot().post("/api/cases", json={"reason": "request"})).status_code == 422


@pytest.mark.asyncio
async def test_rasa_down_means_502_and_nothing_recorded(service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-down", eva)
    fake_rasa.drop_connections = True
    down = await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Bent u er nog?"})
    assert down.status_code == 502 and "not delivered" in down.json()["detail"]
    assert "Rasa" in down.json()["detail"]
    fake_rasa.drop_connections = False
    fake_rasa.fail_status = 500
    refused = await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Bent u er nog?"})
    assert refused.status_code == 502 and "HTTP 500" in refused.json()["detail"]
    transcript = (await eva.get(f"/api/cases/{case_id}")).json()["transcript"]
    assert "Bent u er nog?" not in [line["text"] for line in transcript]
    # Hand-back also fails cleanly and leaves the case with Eva.
    assert (await eva.post(f"/api/cases/{case_id}/handback")).status_code == 502
    assert (await eva.get(f"/api/cases/{case_id}")).json()["status"] == "human"


@pytest.mark.asyncio
async def test_notes_stay_with_the_case_and_never_reach_the_customer(service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = (await open_case(service, "conv-notes")).json()["case_id"]
    response = await tom.post(f"/api/cases/{case_id}/notes", json={"text": "Klant belde gisteren ook al."})
    assert response.status_code == 200
    await eva.post(f"/api/cases/{case_id}/notes", json={"text": "Vervangend toestel is onderweg."})
    notes = (await eva.get(f"/api/cases/{case_id}")).json()["notes"]
    assert [(n["agent"], n["text"]) for n in notes] == [
        ("tom", "Klant belde gisteren ook al."), ("eva", "Vervangend toestel is onderweg.")]
    assert all(n["at"] for n in notes)
    assert fake_rasa.calls("conv-notes") == []
    assert (await eva.post(f"/api/cases/{case_id}/notes", json={"text": ""})).status_code == 422
    assert (await eva.post("/api/cases/c_unknown/notes", json={"text": "x"})).status_code == 404


@pytest.mark.asyncio
async def test_handback_resumes_rasa_and_runs_action_handback(service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = await claimed_case(service, "conv-back", eva)
    assert (await tom.post(f"/api/cases/{case_id}/handback")).status_code == 403
    response = await eva.post(f"/api/cases/{case_id}/handback")
    assert response.status_code == 200 and response.json()["status"] == "bot"

    calls = [(c["path"], c["json"]) for c in fake_rasa.calls("conv-back")][len(ANNOUNCE):]
    # ...and the bot listens, so the customer's next message is read like any other.
    assert calls == [("/conversations/conv-back/tracker/events", {"event": "resume"}),
                     ("/conversations/conv-back/execute", {"name": "action_handback"}),
                     ("/conversations/conv-back/tracker/events", {"event": "action", "name": "action_listen"})]
    assert fake_rasa.calls("conv-back")[len(ANNOUNCE) + 1]["query"] == {"output_channel": "latest"}

    # Nobody may write on a handed-back case; the conversation is the bot's again.
    assert (await eva.post(f"/api/cases/{case_id}/messages", json={"text": "nog iets"})).status_code == 409
    assert (await tom.post(f"/api/cases/{case_id}/messages", json={"text": "nog iets"})).status_code == 409
    assert (await eva.post(f"/api/cases/{case_id}/handback")).status_code == 409
    conversation = {c["conversation_id"]: c for c in (await eva.get("/api/conversations")).json()}["conv-back"]
    assert conversation["owner"] == "bot" and conversation["case_status"] == "bot"
    # The bot can escalate again later: a new case, not the old one.
    new = await open_case(service, "conv-back")
    assert new.status_code == 201 and new.json()["case_id"] != case_id


@pytest.mark.asyncio
async def test_resolve_closes_the_case_and_it_stays_findable(service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = await claimed_case(service, "conv-done", eva)
    await eva.post(f"/api/cases/{case_id}/notes", json={"text": "Terugbetaling gedaan."})
    assert (await tom.post(f"/api/cases/{case_id}/resolve", json={"outcome": "refund"})).status_code == 403
    assert (await eva.post(f"/api/cases/{case_id}/resolve", json={})).status_code == 422
    response = await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "refunded"})
    assert response.status_code == 200
    case = response.json()
    assert case["status"] == "resolved" and case["outcome"] == "refunded" and case["resolved_at"]
    assert [(c["path"], c["json"]) for c in fake_rasa.calls("conv-done")][len(ANNOUNCE):] == [
        ("/conversations/conv-done/tracker/events", {"event": "resume"})]

    assert case_id not in [c["id"] for c in (await tom.get("/api/cases")).json()]
    resolved = (await tom.get("/api/cases", params={"status": "resolved"})).json()
    assert [c["id"] for c in resolved] == [case_id]
    found = (await tom.get(f"/api/cases/{case_id}")).json()
    assert found["notes"][0]["text"] == "Terugbetaling gedaan." and found["outcome"] == "refunded"
    assert (await eva.post(f"/api/cases/{case_id}/messages", json={"text": "x"})).status_code == 409
    assert (await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "again"})).status_code == 409
    assert (await tom.get("/api/cases", params={"status": "nonsense"})).status_code == 422


@pytest.mark.asyncio
async def test_any_agent_may_resolve_a_queued_case(service: Service, fake_rasa: FakeRasa) -> None:
    tom = await service.agent("tom")
    case_id = (await open_case(service, "conv-spam")).json()["case_id"]
    response = await tom.post(f"/api/cases/{case_id}/resolve", json={"outcome": "spam"})
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert (await tom.get("/api/queue")).json() == []
    assert (await tom.post(f"/api/cases/{case_id}/claim")).status_code == 409


@pytest.mark.asyncio
async def test_unknown_ids_are_404(service: Service) -> None:
    eva = await service.agent("eva")
    assert (await eva.get("/api/cases/c_nope")).status_code == 404
    for action in ("claim", "handback"):
        assert (await eva.post(f"/api/cases/c_nope/{action}")).status_code == 404
    assert (await eva.post("/api/cases/c_nope/messages", json={"text": "hoi"})).status_code == 404
    assert (await eva.post("/api/cases/c_nope/resolve", json={"outcome": "x"})).status_code == 404
    assert (await eva.get("/api/conversations/nobody/transcript")).status_code == 404
    assert (await eva.post("/api/conversations/nobody/takeover")).status_code == 404


@pytest.mark.asyncio
async def test_unknown_ids_get_a_404_that_says_what_was_not_found(service: Service) -> None:
    eva = await service.agent("eva")
    for case_id in ("c_nope", "%00", "%ff%fe", "c_" + "0" * 300, "💥"):
        for method, path, body in (("GET", "", None), ("POST", "/claim", None), ("POST", "/handback", None),
                                   ("POST", "/notes", {"text": "x"}), ("POST", "/messages", {"text": "hoi"}),
                                   ("POST", "/resolve", {"outcome": "x"})):
            response = await eva.request(method, f"/api/cases/{case_id}{path}", json=body)
            assert response.status_code == 404, (case_id, path, response.text)
            assert response.json() == {"detail": "case not found"}, (case_id, path)
    for conversation_id in ("nobody", "%ff", "a%00b", "💥"):
        for method, path in (("GET", "transcript"), ("POST", "takeover")):
            response = await eva.request(method, f"/api/conversations/{conversation_id}/{path}")
            assert response.status_code == 404 and response.json() == {"detail": "conversation not found"}


@pytest.mark.asyncio
async def test_broken_json_and_broken_utf8_are_client_errors_that_say_so(service: Service) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-broken", eva)
    bodies = (b"{not json", b"", b'{"text": "hoi"', b'{"text": "h\xffoi \xc3\x28"}', b"\xff\xfe\x00\x01\x80",
              b"[" * 100_000, b"null", b"[]", b'"text"')
    for path, client in ((f"/api/cases/{case_id}/messages", eva), (f"/api/cases/{case_id}/notes", eva),
                         (f"/api/cases/{case_id}/resolve", eva), ("/api/cases", service.bot()),
                         ("/auth/login", service.client())):
        for body in bodies:
            response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code in (400, 422), (path, body[:20], response.status_code)
            detail = json.dumps(response.json()["detail"])
            assert any(word in detail for word in ("JSON", "parsing the body", "Field required", "valid dictionary")
                       ), (path, body[:20], detail)
    # Nothing reached the customer and the case still works.
    assert (await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Nog één vraag"})).status_code == 200


@pytest.mark.asyncio
async def test_lone_surrogates_in_a_body_are_replaced_not_a_server_error(service: Service, fake_rasa: FakeRasa) -> None:
    # JSON may spell a lone UTF-16 surrogate ("\ud800"); no UTF-8 can hold it, so Redis could not
    # store it and even a 422 echoing it could not be rendered (a 500 before).
    eva = await service.agent("eva")
    raw = b'{"conversation_id": "conv-surrogate", "problem_description": "kapot \\ud83d", ' \
          b'"transcript": [{"from": "customer", "text": "kapot \\ud83d", "at": 1714557600.0}], "x\\udfff": 1}'
    opened = await service.bot().post("/api/cases", content=raw, headers={"Content-Type": "application/json"})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    case = (await eva.get(f"/api/cases/{case_id}")).json()
    assert case["packet"]["problem_description"] == "kapot \ufffd"
    assert case["transcript"][0]["text"] == "kapot \ufffd"
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    for path, body in (("messages", b'{"text": "hallo \\udc00"}'), ("notes", b'{"text": "\\ud800"}')):
        response = await eva.post(f"/api/cases/{case_id}/{path}", content=body,
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
    assert [c["json"]["text"] for c in fake_rasa.calls("conv-surrogate")
            if c["json"] and c["json"].get("event") == "bot"][-1] == "hallo \ufffd"
    invalid = await eva.post(f"/api/cases/{case_id}/notes", content=b'{"text": 5, "\\ud800": "\\udfff"}',
                             headers={"Content-Type": "application/json"})
    assert invalid.status_code == 422
    login = await service.client().post("/auth/login", content=b'{"username": "\\ud800", "password": "x"}',
                                        headers={"Content-Type": "application/json"})
    assert login.status_code == 401


@pytest.mark.asyncio
async def test_a_100_kb_problem_and_a_very_long_conversation_still_reach_an_agent(
    service: Service, fake_rasa: FakeRasa,
) -> None:
    huge = "mijn internet doet het niet meer sinds gisteren. " * 2100
    lines = [{"from": "customer", "text": f"bericht {n}", "at": 1714557600.0 + n} for n in range(6000)]
    opened = await open_case(service, "conv-huge", problem_description=huge, transcript=lines,
                             bot_attempts=[{"action": "x"}] * 600)
    assert opened.status_code == 201, opened.text[:300]
    eva = await service.agent("eva")
    packet_ = (await eva.get(f"/api/cases/{opened.json()['case_id']}")).json()["packet"]
    assert len(packet_["problem_description"]) == 20_000 and packet_["problem_description"].endswith("…")
    assert huge.startswith(packet_["problem_description"][:-1])
    assert len(packet_["transcript"]) == 5000 and packet_["transcript"][-1]["text"] == "bericht 5999"
    assert len(packet_["bot_attempts"]) == 500
    # Taking over such a conversation from the bot builds the same packet from Rasa's tracker
    # (a 500 before: the packet failed validation).
    fake_rasa.trackers["conv-huge-live"] = {
        "sender_id": "conv-huge-live", "latest_input_channel": "rest",
        "slots": {"language": "nl", "problem_description": huge},
        "events": [{"event": "user", "text": f"bericht {n}", "timestamp": 1714557600.0 + n} for n in range(6000)],
    }
    taken = await eva.post("/api/conversations/conv-huge-live/takeover")
    assert taken.status_code == 200, taken.text[:300]
    assert len(taken.json()["packet"]["transcript"]) == 5000


# --- takeover, live conversations, the event stream -------------------------------------------------

@pytest.mark.asyncio
async def test_takeover_of_a_bot_conversation(service: Service, fake_rasa: FakeRasa) -> None:
    fake_rasa.trackers["conv-live"] = {
        "sender_id": "conv-live", "latest_input_channel": "whatsapp",
        "slots": {"language": "en", "customer_id": "51937204", "customer_name": "Lotte Peeters",
                  "identity_verified_by": "phone", "problem_description": "my parcel is late",
                  "order_number": "2024118999", "bot_attempts": ["action_order_status"]},
        "latest_message": {"intent": {"name": "order_status"}},
        "events": [{"event": "user", "text": "my parcel is late", "timestamp": 1714557600.0},
                   {"event": "bot", "text": "Let me check that.", "timestamp": 1714557601.0},
                   {"event": "action", "name": "action_listen", "timestamp": 1714557601.5}],
    }
    eva, tom = await service.agent("eva"), await service.agent("tom")
    response = await eva.post("/api/conversations/conv-live/takeover")
    assert response.status_code == 200, response.text
    case = response.json()
    assert case["status"] == "human" and case["owner"] == "eva" and case["reason"] == "takeover"
    assert case["language"] == "en" and case["channel"] == "whatsapp"
    assert case["packet"]["identity"]["customer_id"] == "51937204"
    assert case["packet"]["entities"] == {"order_number": "2024118999"}
    assert case["packet"]["intent"] == "order_status"
    assert [line["text"] for line in case["packet"]["transcript"]] == ["my parcel is late", "Let me check that."]
    assert {"event": "pause"} in [c["json"] for c in fake_rasa.calls("conv-live")]

    # Eva can write at once; Tom cannot take it from her; Eva asking again changes nothing.
    assert (await eva.post(f"/api/cases/{case['id']}/messages", json={"text": "Hi, Eva here."})).status_code == 200
    taken = await tom.post("/api/conversations/conv-live/takeover")
    assert taken.status_code == 409 and taken.json()["detail"] == "claimed by Eva de Jong"
    assert (await eva.post("/api/conversations/conv-live/takeover")).json()["id"] == case["id"]
    # The bot escalating meanwhile gets the same case back, not a second one.
    assert (await open_case(service, "conv-live")).json()["case_id"] == case["id"]


@pytest.mark.asyncio
async def test_takeover_of_a_queued_case_claims_it(service: Service, fake_rasa: FakeRasa) -> None:
    tom = await service.agent("tom")
    case_id = (await open_case(service, "conv-queued")).json()["case_id"]
    response = await tom.post("/api/conversations/conv-queued/takeover")
    assert response.status_code == 200
    assert response.json()["id"] == case_id and response.json()["owner"] == "tom"
    assert response.json()["reason"] == "complexity"


@pytest.mark.asyncio
async def test_consumer_builds_transcripts_and_live_conversations(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    eva = await service.agent("eva")
    now = time.time()
    xadd(redis_sync, "conv-a", {"event": "action", "name": "action_session_start", "timestamp": now - 10})
    xadd(redis_sync, "conv-a", {"event": "user", "text": "Waar blijft mijn pakket?", "timestamp": now - 9,
                                "input_channel": "socketio", "parse_data": {"intent": {"name": "order_status"}}})
    xadd(redis_sync, "conv-a", {"event": "slot", "name": "language", "value": "nl", "timestamp": now - 8.5})
    xadd(redis_sync, "conv-a", {"event": "bot", "text": "Ik zoek het voor u op.", "timestamp": now - 8,
                                "metadata": {"utter_action": "utter_checking"}})
    xadd(redis_sync, "conv-b", {"event": "user", "text": "hello", "timestamp": now - 5, "input_channel": "rest"})
    xadd(redis_sync, "conv-a", {"event": "bot", "text": "Ik ben Eva, ik help u verder.", "timestamp": now - 2,
                                "metadata": {"agent_id": "eva", "agent_name": "Eva de Jong"}})
    redis_sync.xadd(keys.EVENTS_STREAM, {"sender_id": "conv-a", "event": "{broken"})  # skipped, not fatal

    async def three_lines():
        response = await eva.get("/api/conversations/conv-a/transcript")
        return response.json() if response.status_code == 200 and len(response.json()) == 3 else None

    lines = await eventually(three_lines)
    assert [(line["from"], line["text"], line["agent_name"]) for line in lines] == [
        ("customer", "Waar blijft mijn pakket?", None),
        ("bot", "Ik zoek het voor u op.", None),
        ("agent", "Ik ben Eva, ik help u verder.", "Eva de Jong"),
    ]
    assert datetime.fromisoformat(lines[0]["at"]).timestamp() == pytest.approx(now - 9, abs=0.01)

    live = await eventually(lambda: _conversations(eva, 2))
    assert [c["conversation_id"] for c in live] == ["conv-a", "conv-b"]  # newest activity first
    assert live[0]["last_text"] == "Ik ben Eva, ik help u verder." and live[0]["owner"] == "bot"
    assert live[0]["language"] == "nl" and live[0]["channel"] == "socketio" and live[0]["case_id"] is None
    xadd(redis_sync, "conv-b", {"event": "user", "text": "anyone?", "timestamp": time.time()})
    live = await eventually(lambda: _conversations(eva, 2, first="conv-b"))
    assert live[0]["last_text"] == "anyone?"

    # Every entry is acknowledged: nothing stays pending in the group.
    async def nothing_pending():
        return redis_sync.xpending(keys.EVENTS_STREAM, keys.EVENTS_GROUP)["pending"] == 0
    await eventually(nothing_pending)


async def _conversations(client: httpx.AsyncClient, count: int, first: str | None = None):
    found = (await client.get("/api/conversations")).json()
    if len(found) != count or (first and found[0]["conversation_id"] != first):
        return None
    return found


@pytest.mark.asyncio
async def test_case_detail_includes_the_stream_transcript_and_the_case_owner_shows_live(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-detail")).json()["case_id"]
    # Before the stream has anything, the bot's own transcript from the packet is shown.
    early = (await eva.get(f"/api/cases/{case_id}")).json()["transcript"]
    assert [line["text"] for line in early] == ["ik heb mijn laptop nooit ontvangen", "Dat zoek ik voor u uit."]
    xadd(redis_sync, "conv-detail", {"event": "user", "text": "hallo? is daar iemand?", "timestamp": time.time()})

    async def streamed():
        transcript = (await eva.get(f"/api/cases/{case_id}")).json()["transcript"]
        return transcript if transcript and transcript[-1]["text"] == "hallo? is daar iemand?" else None

    await eventually(streamed)
    await eva.post(f"/api/cases/{case_id}/claim")
    live = {c["conversation_id"]: c for c in (await eva.get("/api/conversations")).json()}["conv-detail"]
    assert live["owner"] == "agent" and live["owner_name"] == "Eva de Jong"
    assert live["case_id"] == case_id and live["case_status"] == "human"


@pytest.mark.asyncio
async def test_agent_line_from_the_stream_is_not_doubled(
    service: Service, redis_sync: sync_redis.Redis, fake_rasa: FakeRasa,
) -> None:
    """Rasa's broker echoes the agent's message; the console must show it once."""
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-echo", eva)
    await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Een moment."})
    sent = [c for c in fake_rasa.calls("conv-echo") if (c["json"] or {}).get("event") == "bot"][0]["json"]
    xadd(redis_sync, "conv-echo", {**sent, "timestamp": time.time()})
    xadd(redis_sync, "conv-echo", {"event": "user", "text": "ok", "timestamp": time.time() + 1})

    async def customer_answered():
        lines = (await eva.get("/api/conversations/conv-echo/transcript")).json()
        return lines if lines[-1]["text"] == "ok" else None

    lines = await eventually(customer_answered)
    assert [line["text"] for line in lines].count("Een moment.") == 1


def test_websocket_pushes_lines_cases_and_conversations(settings: Settings, redis_sync: sync_redis.Redis) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/ws") as ws:  # no session
                ws.receive_json()
        client.portal.call(_add_agent, app, "eva")
        assert client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]}).status_code == 200
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/ws", headers={"Origin": "https://evil.example"}) as ws:
                ws.receive_json()
        with client.websocket_connect("/ws") as ws:
            xadd(redis_sync, "conv-ws", {"event": "user", "text": "Is daar iemand?", "timestamp": time.time(),
                                         "input_channel": "socketio"})
            pushed = _receive_until(ws, "line")
            assert pushed["conversation_id"] == "conv-ws"
            assert pushed["line"]["from"] == "customer" and pushed["line"]["text"] == "Is daar iemand?"
            conversation = _receive_until(ws, "conversation")["conversation"]
            assert conversation["conversation_id"] == "conv-ws"

            client.post("/api/cases", json=packet("conv-ws"), headers=BOT_HEADERS)
            case = _receive_until(ws, "case")["case"]
            assert case["conversation_id"] == "conv-ws" and case["status"] == "queued"
            ws.send_json({"type": "ping"})
            assert _receive_until(ws, "pong") == {"type": "pong"}


def _receive_until(ws, kind: str, limit: int = 20) -> dict:
    """The next push of one type (others may come first, e.g. conversation updates)."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} push")


# --- persistence, console pages, CLI ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_data_survives_a_new_app_instance(settings: Settings, redis_sync: sync_redis.Redis, clock) -> None:
    async with running(create_app(settings, clock=clock)) as first:
        eva = await first.agent("eva")
        case_id = await claimed_case(first, "conv-keep", eva)
        await eva.post(f"/api/cases/{case_id}/notes", json={"text": "Blijft bewaard."})
        await eva.post(f"/api/cases/{case_id}/messages", json={"text": "Ik ben er."})
        cookie = eva.cookies["handoff_session"]
        csrf = eva.headers["X-CSRF-Token"]
    async with running(create_app(settings, clock=clock)) as second:
        # The session lives in Redis: the console stays signed in across a restart.
        eva = second.client()
        eva.cookies.set("handoff_session", cookie)
        case = (await eva.get(f"/api/cases/{case_id}")).json()
        assert case["status"] == "human" and case["owner"] == "eva"
        assert case["notes"][0]["text"] == "Blijft bewaard."
        assert case["transcript"][-1]["text"] == "Ik ben er."
        assert (await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "ok"},
                               headers={"X-CSRF-Token": csrf})).status_code == 200
        tom = await second.agent("tom")
        assert (await tom.get("/api/cases", params={"status": "resolved"})).json()[0]["id"] == case_id


@pytest.mark.asyncio
async def test_console_pages(service: Service) -> None:
    eva = await service.agent("eva")
    page = await eva.get("/")
    index = ROOT / "handoff" / "static" / "index.html"
    assert page.status_code == (200 if index.is_file() else 503)
    assert page.headers["x-frame-options"] == "DENY"
    login = await service.client().get("/login")
    assert login.status_code == (200 if (ROOT / "handoff" / "static" / "login.html").is_file() else 503)


def test_agents_cli_adds_and_lists(redis_url: str, redis_sync: sync_redis.Redis) -> None:
    env = {**os.environ, "HANDOFF_REDIS_URL": redis_url, "EVA_PW": "a-long-password"}
    env.pop("HANDOFF_ENV", None)  # no secrets needed for managing agents
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "handoff.agents", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60)
    added = run("add", "eva", "--name", "Eva de Jong", "--password-env", "EVA_PW")
    assert added.returncode == 0, added.stderr
    assert "a-long-password" not in added.stdout + added.stderr
    listed = run("list")
    assert listed.returncode == 0 and "eva\tEva de Jong\toffline" in listed.stdout
    stored = redis_sync.hgetall(keys.agent("eva"))
    assert stored["name"] == "Eva de Jong" and verify_password("a-long-password", stored["password_hash"])
    assert "a-long-password" not in stored["password_hash"]
    short = run("add", "tom", "--name", "Tom", "--password", "short")
    assert short.returncode == 2 and "at least 8" in short.stderr


@pytest.mark.asyncio
async def test_a_whatsapp_case_shows_the_time_left_in_the_24_hour_window(
    service: Service, redis_sync: sync_redis.Redis, clock
) -> None:
    eva = await service.agent("eva")
    wa_id = "31612345678"
    case_id = (await open_case(service, wa_id, channel="whatsapp")).json()["case_id"]
    assert (await eva.get(f"/api/cases/{case_id}")).json()["whatsapp_window_seconds_left"] == 0  # never wrote
    redis_sync.set(f"whatsapp:window:{wa_id}", clock().timestamp() - 3600)
    left = (await eva.get(f"/api/cases/{case_id}")).json()["whatsapp_window_seconds_left"]
    assert 22 * 3600 < left <= 23 * 3600
    other = (await open_case(service, "conv-web")).json()["case_id"]
    assert (await eva.get(f"/api/cases/{other}")).json()["whatsapp_window_seconds_left"] is None
