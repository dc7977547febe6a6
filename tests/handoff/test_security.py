"""Security of the agents' console and API (issue 7): authentication on every route, CSRF on every
change, the bot's token only for the bot, sessions that expire and end everywhere, and roles.

The route walk reads ``app.routes``: a route added later without a session check (or a bot-only
route that lets agents in) makes these tests fail until it is protected or explicitly listed in
``PUBLIC`` with the reason anyone may call it.
"""

from __future__ import annotations

import hmac
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import httpx  # noqa: E402
import redis as sync_redis  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts  # noqa: E402
from itsdangerous.timed import TimestampSigner  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from starlette.exceptions import StarletteDeprecationWarning  # noqa: E402
from starlette.routing import Mount, Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from contract import keys  # noqa: E402
from handoff.agents import add_agent  # noqa: E402
from handoff.app import create_app  # noqa: E402
from handoff.settings import Settings  # noqa: E402
from tests.fakes.packets import packet  # noqa: E402
from tests.handoff.conftest import (  # noqa: E402
    API_TOKEN, BOT_HEADERS, NAMES, PASSWORDS, FakeRasa, Service, running,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient  # noqa: E402

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]

# (method, path) anyone may call, and why. Everything else needs an agent's session or the bot token.
PUBLIC = {
    ("GET", "/health"): "load balancers and probes",
    ("POST", "/auth/login"): "signing in",
    ("POST", "/auth/logout"): "ends the caller's own session (none: just clears the cookie)",
    ("GET", "/login"): "the sign-in page",
    ("GET", "/"): "redirects to /login without a session (checked below)",
    ("GET", "/public/conversations/transcript"): "the widget; the session id header is the secret",
    ("OPTIONS", "/public/conversations/transcript"): "the widget's CORS preflight",
}
PUBLIC_MOUNTS = {"/static": "the console's scripts and styles (the login page needs them)"}
BOT_ONLY = {("POST", "/api/cases")}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_REFUSED = "missing or wrong CSRF token"


def route_contexts(app: FastAPI) -> Iterator[Tuple[object, str, Set[str]]]:
    """(route, full path, methods) of every route, through included routers."""
    for context in iter_route_contexts(app.routes):
        yield context.original_route, context.path, set(context.methods or ())


def http_routes(app: FastAPI) -> List[Tuple[str, str]]:
    """Every (method, path) the app serves over HTTP (HEAD is GET's twin)."""
    return [(method, path) for route, path, methods in route_contexts(app)
            if isinstance(route, (APIRoute, Route)) for method in sorted(methods) if method != "HEAD"]


def websocket_routes(app: FastAPI) -> List[str]:
    return [path for route, path, _ in route_contexts(app) if isinstance(route, (APIWebSocketRoute, WebSocketRoute))]


def unknown_routes(app: FastAPI) -> List[str]:
    """Routes of a kind the walk does not know how to test (they must not slip through)."""
    kinds = (APIRoute, Route, APIWebSocketRoute, WebSocketRoute)
    return [f"{type(route).__name__} {path}" for route, path, _ in route_contexts(app)
            if not isinstance(route, kinds) and not (isinstance(route, Mount) and path in PUBLIC_MOUNTS)]


def concrete(path: str) -> str:
    """A request path for a route template: every parameter ``x``."""
    return re.sub(r"\{[^}]+\}", "x", path)


def protected(app: FastAPI) -> List[Tuple[str, str]]:
    return [(m, p) for m, p in http_routes(app) if (m, p) not in PUBLIC]


async def unprotected(app: FastAPI, client: httpx.AsyncClient) -> List[str]:
    """Routes that answer a request without a session or token with anything but 401/403."""
    found = []
    for method, path in protected(app):
        response = await client.request(method, concrete(path))
        if response.status_code not in (401, 403):
            found.append(f"{method} {path} -> {response.status_code}")
    return found


async def signed_in_as(service: Service, username: str, role: str = "agent") -> httpx.AsyncClient:
    """A signed-in client (CSRF header preset) of an agent with ``role``."""
    await add_agent(service.store, username, NAMES[username], PASSWORDS[username], role)
    return await service.agent(username)


async def open_case(service: Service, conversation_id: str) -> str:
    response = await service.bot().post("/api/cases", json=packet(conversation_id))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


# --- authentication on everything -------------------------------------------------------------------

@pytest.mark.asyncio
async def test_every_route_needs_a_session_or_the_bot_token(service: Service) -> None:
    app = service.app
    assert unknown_routes(app) == []
    assert len(protected(app)) >= 15, "the walk found too few routes to be reading the app"
    anonymous = service.client()
    assert await unprotected(app, anonymous) == []
    # Websockets too: the console's socket closes without a session.
    assert websocket_routes(app) == ["/ws"]
    # The console page sends strangers to the sign-in page instead of showing anything.
    page = await anonymous.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    # The public allow-list names only routes that exist (no stale exceptions).
    assert set(PUBLIC) <= set(http_routes(app))


@pytest.mark.asyncio
async def test_the_route_walk_catches_a_new_route_without_authentication(settings: Settings, redis_sync) -> None:
    """The walk above is only worth something if it notices a forgotten check."""
    app = create_app(settings)

    @app.get("/api/debug/cases")
    async def forgotten() -> dict:
        return {"cases": "all of them"}

    async with running(app) as started:
        assert await unprotected(app, started.client()) == ["GET /api/debug/cases -> 200"]


def test_websockets_refuse_without_a_session_or_from_another_origin(settings: Settings, redis_sync) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        for path in websocket_routes(app):
            with pytest.raises(WebSocketDisconnect) as refused:
                with client.websocket_connect(path) as ws:
                    ws.receive_json()
            assert refused.value.code == 1008, path
        client.portal.call(add_agent, app.state.store, "eva", NAMES["eva"], PASSWORDS["eva"])
        assert client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]}).status_code == 200
        for path in websocket_routes(app):
            with pytest.raises(WebSocketDisconnect):
                with client.websocket_connect(path, headers={"Origin": "https://evil.example"}) as ws:
                    ws.receive_json()
        with client.websocket_connect("/ws") as ws:  # the same cookie from the console's own origin works
            ws.send_json({"type": "ping"})
            while ws.receive_json()["type"] != "pong":
                pass


@pytest.mark.asyncio
async def test_every_change_needs_the_csrf_token(service: Service) -> None:
    # An admin, so the only reason to refuse is the missing token, never the role.
    admin = await signed_in_as(service, "ana", "admin")
    token = admin.headers.pop("X-CSRF-Token")
    changes = [(m, p) for m, p in protected(service.app) if m in UNSAFE and (m, p) not in BOT_ONLY]
    assert len(changes) >= 8
    for method, path in changes:
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": token + "x"}):
            response = await admin.request(method, concrete(path), headers=headers)
            assert response.status_code == 403, (method, path, headers, response.text)
            assert response.json()["detail"] == CSRF_REFUSED, (method, path)
    # With the token the same requests get past the check (to a 404/409/422 about the made-up ids).
    for method, path in changes:
        response = await admin.request(method, concrete(path), headers={"X-CSRF-Token": token})
        assert response.json().get("detail") != CSRF_REFUSED, (method, path)


@pytest.mark.asyncio
async def test_bot_routes_take_only_the_bot_token(service: Service) -> None:
    agent = await signed_in_as(service, "ana", "admin")  # even an admin's session (with CSRF) is no bot token
    anonymous = service.client()
    wrong = ["", "Bearer", "Bearer ", f"Basic {API_TOKEN}", f"Bearer {API_TOKEN}x", f"Bearer {API_TOKEN[:-1]}",
             f"Bearer {API_TOKEN.upper()}", f"Token {API_TOKEN}", API_TOKEN]
    for method, path in BOT_ONLY:
        body = packet("conv-bot-only")
        assert (await agent.request(method, path, json=body)).status_code == 401
        for header in wrong:
            response = await anonymous.request(method, path, json=body, headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.headers["www-authenticate"] == "Bearer"
        assert (await anonymous.request(method, path, json=body, headers=BOT_HEADERS)).status_code == 201
    # ...and the bot's token opens no agent route.
    bot = service.bot()
    for method, path in protected(service.app):
        if (method, path) not in BOT_ONLY:
            assert (await bot.request(method, concrete(path))).status_code == 401, (method, path)


@pytest.mark.asyncio
async def test_an_empty_configured_bot_token_lets_nobody_in(settings: Settings, redis_sync) -> None:
    local = settings.model_copy(update={"env": "local", "api_token": SecretStr("")})
    async with running(create_app(local)) as started:
        client = started.client()
        for header in ("Bearer ", "Bearer", ""):
            response = await client.post("/api/cases", json=packet("conv-empty"), headers={"Authorization": header})
            assert response.status_code == 401


@pytest.mark.asyncio
async def test_tokens_are_compared_in_constant_time(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: List[bytes] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append(b)
        return real(a, b)

    eva = await service.agent("eva")
    case_id = await open_case(service, "conv-timing")
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await service.bot().post("/api/cases", json=packet("conv-timing-2"))).status_code == 201
    assert API_TOKEN.encode() in compared
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    assert eva.headers["X-CSRF-Token"].encode() in compared


@pytest.mark.asyncio
async def test_rasa_is_called_with_a_jwt_header_and_no_secret_in_the_url(service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    case_id = await open_case(service, "conv-rasa-url")
    for path, body in ((f"/api/cases/{case_id}/claim", None), (f"/api/cases/{case_id}/messages", {"text": "Hallo"}),
                       (f"/api/cases/{case_id}/handback", None)):
        assert (await eva.post(path, json=body)).status_code == 200, path
    calls = fake_rasa.calls("conv-rasa-url")
    assert len(calls) >= 4
    for call in calls:
        assert call["role"] == "admin"  # the JWT came in the Authorization header
        assert set(call["query"]) <= {"execute_side_effects", "output_channel"}, call["query"]


# --- sessions -----------------------------------------------------------------------------------------

def session_key(client: httpx.AsyncClient, service: Service) -> str:
    from handoff.api.deps import session_serializer

    session_id = session_serializer(service.app.state.settings).loads(client.cookies["handoff_session"])
    return keys.session(session_id)


@pytest.mark.asyncio
async def test_the_redis_session_expires_after_the_session_hours(service: Service, redis_sync) -> None:
    eva = await service.agent("eva")
    key = session_key(eva, service)
    hours = service.app.state.settings.session_hours
    assert hours * 3600 - 5 <= redis_sync.ttl(key) <= hours * 3600
    assert (await eva.get("/api/me")).status_code == 200
    redis_sync.pexpire(key, 50)  # what the TTL does when the hours are up
    time.sleep(0.2)
    assert (await eva.get("/api/me")).status_code == 401
    assert (await eva.get("/api/queue")).status_code == 401


@pytest.mark.asyncio
async def test_an_old_cookie_is_refused_even_if_the_session_were_still_in_redis(
    service: Service, redis_sync, monkeypatch: pytest.MonkeyPatch,
) -> None:
    eva = await service.agent("eva")
    redis_sync.persist(session_key(eva, service))  # a session that (wrongly) never expires in Redis
    hours = service.app.state.settings.session_hours
    now = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now + int(hours * 3600) - 60)
    assert (await eva.get("/api/me")).status_code == 200  # just within the session hours
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now + int(hours * 3600) + 60)
    assert (await eva.get("/api/me")).status_code == 401


@pytest.mark.asyncio
async def test_logout_ends_the_session_on_every_instance(settings: Settings, redis_sync, clock) -> None:
    async with running(create_app(settings)) as first, running(create_app(settings)) as second:
        eva = await first.agent("eva")
        cookie, csrf = eva.cookies["handoff_session"], eva.headers["X-CSRF-Token"]
        elsewhere = second.client()
        elsewhere.cookies.set("handoff_session", cookie)
        elsewhere.headers["X-CSRF-Token"] = csrf
        assert (await elsewhere.get("/api/me")).status_code == 200
        response = await eva.post("/auth/logout")
        assert response.status_code == 200
        cleared = response.headers["set-cookie"].lower()
        assert "handoff_session=" in cleared and ("max-age=0" in cleared or "expires=" in cleared)
        assert (await elsewhere.get("/api/me")).status_code == 401
        assert (await elsewhere.get("/api/queue")).status_code == 401


@pytest.mark.asyncio
async def test_a_removed_agent_is_signed_out_at_once(service: Service) -> None:
    eva = await service.agent("eva")
    assert await service.store.remove_agent("eva")
    assert (await eva.get("/api/me")).status_code == 401


@pytest.mark.asyncio
@pytest.mark.parametrize("configured, base_url, secure", [
    (None, "http://testserver", False), (None, "https://testserver", True),
    (True, "http://testserver", True), (False, "https://testserver", False),
])
async def test_cookie_flags(settings: Settings, redis_sync, configured, base_url: str, secure: bool) -> None:
    config = settings.model_copy(update={"cookie_secure": configured})
    async with running(create_app(config)) as started:
        await add_agent(started.store, "eva", NAMES["eva"], PASSWORDS["eva"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=started.app), base_url=base_url) as client:
            response = await client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]})
            flags = {part.strip().split("=")[0].lower() for part in response.headers["set-cookie"].split(";")}
            assert {"httponly", "samesite", "path", "max-age"} <= flags
            assert "samesite=strict" in response.headers["set-cookie"].lower()
            assert ("secure" in flags) is secure
            logout = await client.post("/auth/logout")
            assert ("secure" in logout.headers["set-cookie"].lower()) is secure
            assert "httponly" in logout.headers["set-cookie"].lower()


@pytest.mark.asyncio
async def test_each_sign_in_is_a_new_session(service: Service) -> None:
    first, second = await service.agent("eva"), await service.agent("eva")
    assert first.cookies["handoff_session"] != second.cookies["handoff_session"]
    assert first.headers["X-CSRF-Token"] != second.headers["X-CSRF-Token"]
    # One session's CSRF token is no good for another's.
    case_id = await open_case(service, "conv-two-sessions")
    refused = await second.post(f"/api/cases/{case_id}/claim", headers={"X-CSRF-Token": first.headers["X-CSRF-Token"]})
    assert refused.status_code == 403
    # Signing out of one leaves the other.
    assert (await first.post("/auth/logout")).status_code == 200
    assert (await first.get("/api/me")).status_code == 401
    assert (await second.get("/api/me")).status_code == 200


# --- roles ---------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_me_tells_the_role(service: Service) -> None:
    for username, role in (("eva", "agent"), ("tom", "supervisor"), ("ana", "admin")):
        client = await signed_in_as(service, username, role)
        assert (await client.get("/api/me")).json()["agent"]["role"] == role


@pytest.mark.asyncio
async def test_agent_records_without_a_role_are_plain_agents(service: Service, redis_sync) -> None:
    await add_agent(service.store, "eva", NAMES["eva"], PASSWORDS["eva"])
    redis_sync.hdel(keys.agent("eva"), "role")  # as stored before roles existed
    eva = await service.agent("eva")
    assert (await eva.get("/api/me")).json()["agent"]["role"] == "agent"
    redis_sync.hset(keys.agent("eva"), "role", "root")  # a role this version does not know grants nothing
    assert (await eva.get("/api/me")).json()["agent"]["role"] == "agent"
    assert (await eva.get("/api/admin/agents")).status_code == 403


@pytest.mark.asyncio
async def test_an_agent_works_only_their_own_cases(service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await signed_in_as(service, "eva"), await signed_in_as(service, "tom")
    case_id = await open_case(service, "conv-own")
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    # Tom reads everything...
    assert (await tom.get(f"/api/cases/{case_id}")).status_code == 200
    assert (await tom.get("/api/conversations/conv-own/transcript")).status_code == 200
    # ...but does not write on Eva's case, hand it back, resolve it or take it from her.
    assert (await tom.post(f"/api/cases/{case_id}/messages", json={"text": "Tom hier"})).status_code == 403
    assert (await tom.post(f"/api/cases/{case_id}/handback")).status_code == 403
    assert (await tom.post(f"/api/cases/{case_id}/resolve", json={"outcome": "x"})).status_code == 403
    assert (await tom.post(f"/api/cases/{case_id}/claim")).status_code == 409
    assert (await tom.post("/api/conversations/conv-own/takeover")).status_code == 409
    # A private note for a colleague is fine: it never reaches the customer.
    assert (await tom.post(f"/api/cases/{case_id}/notes", json={"text": "klant belde ook"})).status_code == 200
    case = (await eva.get(f"/api/cases/{case_id}")).json()
    assert case["owner"] == "eva" and case["status"] == "human"
    assert not [c for c in fake_rasa.calls("conv-own") if (c["json"] or {}).get("text") == "Tom hier"]


@pytest.mark.asyncio
async def test_a_supervisor_may_work_on_and_take_over_a_colleagues_case(service: Service, fake_rasa: FakeRasa) -> None:
    eva, sue = await signed_in_as(service, "eva"), await signed_in_as(service, "tom", "supervisor")
    case_id = await open_case(service, "conv-super")
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    reply = await sue.post(f"/api/cases/{case_id}/messages", json={"text": "Tom, teamleider, hier."})
    assert reply.status_code == 200 and reply.json()["agent_name"] == NAMES["tom"]

    taken = await sue.post("/api/conversations/conv-super/takeover")
    assert taken.status_code == 200, taken.text
    assert taken.json()["id"] == case_id and taken.json()["owner"] == "tom" and taken.json()["status"] == "human"
    # The customer hears who joined; Eva can no longer answer on the case.
    slots = [c["json"] for c in fake_rasa.calls("conv-super") if (c["json"] or {}).get("event") == "slot"]
    assert slots[-1] == {"event": "slot", "name": "agent_name", "value": NAMES["tom"]}
    assert fake_rasa.calls("conv-super")[-1]["json"] == {"name": "action_agent_joined"}
    assert (await eva.post(f"/api/cases/{case_id}/messages", json={"text": "nog iets"})).status_code == 403
    assert (await sue.post(f"/api/cases/{case_id}/handback")).status_code == 200

    # A supervisor also hands back or resolves a case an absent colleague left behind.
    other = await open_case(service, "conv-left")
    assert (await eva.post(f"/api/cases/{other}/claim")).status_code == 200
    resolved = await sue.post(f"/api/cases/{other}/resolve", json={"outcome": "afgehandeld door teamleider"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"


@pytest.mark.asyncio
async def test_a_takeover_from_a_colleague_is_atomic(service: Service) -> None:
    eva, sue = await signed_in_as(service, "eva"), await signed_in_as(service, "tom", "supervisor")
    case_id = await open_case(service, "conv-race")
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    eva_agent = await service.store.get_agent("eva")
    tom_agent = await service.store.get_agent("tom")
    # Someone else took it meanwhile: the supervisor's expected owner no longer holds it.
    await service.store.reassign(case_id, tom_agent, expected_owner="eva")
    with pytest.raises(Exception, match="changed meanwhile"):
        await service.store.reassign(case_id, eva_agent, expected_owner="eva")
    assert (await sue.get(f"/api/cases/{case_id}")).json()["owner"] == "tom"


@pytest.mark.asyncio
async def test_admin_routes_are_for_admins_only(service: Service) -> None:
    agent, supervisor = await signed_in_as(service, "eva"), await signed_in_as(service, "tom", "supervisor")
    admin = await signed_in_as(service, "ana", "admin")
    admin_routes = [(m, p) for m, p in protected(service.app) if p.startswith("/api/admin")]
    assert len(admin_routes) >= 3
    for client in (agent, supervisor):
        for method, path in admin_routes:
            response = await client.request(method, concrete(path), json={"role": "admin"})
            assert response.status_code == 403, (method, path)
    listed = await admin.get("/api/admin/agents")
    assert listed.status_code == 200
    assert {a["username"]: a["role"] for a in listed.json()} == {"eva": "agent", "tom": "supervisor", "ana": "admin"}


@pytest.mark.asyncio
async def test_an_admin_changes_roles_effective_at_the_next_request(service: Service) -> None:
    eva, admin = await signed_in_as(service, "eva"), await signed_in_as(service, "ana", "admin")
    assert (await eva.get("/api/admin/agents")).status_code == 403
    changed = await admin.put("/api/admin/agents/eva/role", json={"role": "admin"})
    assert changed.status_code == 200 and changed.json() == {"username": "eva", "name": NAMES["eva"], "role": "admin"}
    assert (await eva.get("/api/admin/agents")).status_code == 200  # same session, new role
    assert (await admin.put("/api/admin/agents/eva/role", json={"role": "agent"})).status_code == 200
    assert (await eva.get("/api/admin/agents")).status_code == 403
    assert (await admin.put("/api/admin/agents/ana/role", json={"role": "agent"})).status_code == 409
    assert (await admin.put("/api/admin/agents/nobody/role", json={"role": "agent"})).status_code == 404
    assert (await admin.put("/api/admin/agents/eva/role", json={"role": "root"})).status_code == 422
    assert not await service.store.redis.exists(keys.agent("nobody"))


@pytest.mark.asyncio
async def test_handoff_admins_still_makes_an_admin(settings: Settings, redis_sync) -> None:
    async with running(create_app(settings.model_copy(update={"admins": "eva"}))) as started:
        eva = await started.agent("eva")
        assert (await eva.get("/api/me")).json()["agent"]["role"] == "admin"
        assert (await eva.get("/api/admin/agents")).status_code == 200
        tom = await started.agent("tom")
        assert (await tom.get("/api/admin/agents")).status_code == 403


def test_agents_cli_sets_and_keeps_roles(redis_url: str, redis_sync: sync_redis.Redis) -> None:
    env = {**os.environ, "HANDOFF_REDIS_URL": redis_url, "PW": "a-long-password"}
    env.pop("HANDOFF_ENV", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "handoff.agents", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    assert run("add", "eva", "--name", "Eva de Jong", "--password-env", "PW").returncode == 0
    assert redis_sync.hget(keys.agent("eva"), "role") == "agent"
    assert run("add", "tom", "--name", "Tom", "--password-env", "PW", "--role", "supervisor").returncode == 0
    assert run("role", "eva", "admin").returncode == 0
    # A new password keeps the role (re-running an install script must not demote an admin).
    assert run("add", "eva", "--name", "Eva de Jong", "--password-env", "PW").returncode == 0
    assert redis_sync.hget(keys.agent("eva"), "role") == "admin"
    listed = run("list").stdout
    assert "eva\tEva de Jong\toffline\tadmin" in listed and "tom\tTom\toffline\tsupervisor" in listed
    bad = run("add", "ana", "--name", "Ana", "--password-env", "PW", "--role", "root")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    assert run("role", "nobody", "admin").returncode == 1
    assert not redis_sync.exists(keys.agent("nobody"))
