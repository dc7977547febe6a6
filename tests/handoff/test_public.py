"""The widget's history endpoint: ``GET /public/conversations/transcript`` with the session id in
the ``X-Helder-Session`` header.

No sign-in: the session id is the secret. What a customer (or anyone guessing) can and cannot get.
"""

from __future__ import annotations

import time
from typing import Tuple
import uuid

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import httpx  # noqa: E402
import redis as sync_redis  # noqa: E402

from handoff.app import create_app  # noqa: E402
from handoff.settings import Settings  # noqa: E402
from tests.fakes.packets import packet  # noqa: E402
from tests.handoff.conftest import Service, eventually, running  # noqa: E402
from tests.handoff.test_api import xadd  # noqa: E402

pytestmark = pytest.mark.timeout(60)
SHOP = "http://localhost:8080"


def session_id() -> str:
    """What the widget makes: crypto.randomUUID() without the dashes."""
    return uuid.uuid4().hex


def web_chat(redis_sync: sync_redis.Redis, conversation_id: str, *, channel: str = "socketio") -> None:
    """A customer, the bot and an agent talk, as Rasa's event broker publishes it."""
    now = time.time()
    xadd(redis_sync, conversation_id, {"event": "action", "name": "action_session_start", "timestamp": now - 30})
    xadd(redis_sync, conversation_id, {"event": "user", "text": "i want to talk to a human", "timestamp": now - 20,
                                       "input_channel": channel, "metadata": {"shop_token": "secret.jwt.token"},
                                       "parse_data": {"intent": {"name": "human_handoff"}}})
    xadd(redis_sync, conversation_id, {"event": "slot", "name": "problem_description", "value": "secret slot",
                                       "timestamp": now - 19})
    xadd(redis_sync, conversation_id, {"event": "bot", "text": "You are number 1 in the queue.", "timestamp": now - 18,
                                       "metadata": {"utter_action": "utter_handoff_queued"}})
    xadd(redis_sync, conversation_id, {"event": "bot", "text": "Hello, Eva here.", "timestamp": now - 10,
                                       "metadata": {"agent_id": "eva", "agent_name": "Eva de Jong",
                                                    "message_id": uuid.uuid4().hex}})


TRANSCRIPT = "/public/conversations/transcript"


async def fetch(client: httpx.AsyncClient, conversation_id: str, **headers: str) -> httpx.Response:
    """What the widget does: the session id in its header, never in the URL."""
    return await client.get(TRANSCRIPT, headers={"X-Helder-Session": conversation_id, **headers})


def two_web_chats(redis_sync: sync_redis.Redis) -> Tuple[str, str]:
    """Two customers' web chats: (mine, theirs)."""
    mine, theirs = session_id(), session_id()
    web_chat(redis_sync, mine)
    web_chat(redis_sync, theirs)
    return mine, theirs


async def get_lines(client: httpx.AsyncClient, conversation_id: str, count: int):
    response = await fetch(client, conversation_id)
    return response.json() if response.status_code == 200 and len(response.json()) == count else None


@pytest.mark.asyncio
async def test_the_session_id_gets_its_own_transcript_without_signing_in(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    mine, theirs = two_web_chats(redis_sync)
    xadd(redis_sync, theirs, {"event": "user", "text": "someone else's secret", "timestamp": time.time(),
                              "input_channel": "socketio"})
    anonymous = service.client()  # no cookie, no token

    lines = await eventually(lambda: get_lines(anonymous, mine, 3))
    assert [(line["from"], line["text"], line["agent_name"]) for line in lines] == [
        ("customer", "i want to talk to a human", None),
        ("bot", "You are number 1 in the queue.", None),
        ("agent", "Hello, Eva here.", "Eva de Jong"),
    ]
    # Lines only: no metadata, slots, identity, case or notes.
    assert all(set(line) == {"from", "text", "at", "agent_name"} for line in lines)
    response = await fetch(anonymous, mine)
    assert "someone else's secret" not in response.text and "secret.jwt.token" not in response.text
    assert response.headers["cache-control"] == "no-store"
    # Upper case hex is a different Rasa conversation id: not this one.
    assert (await fetch(anonymous, mine.upper())).status_code == 404


@pytest.mark.asyncio
async def test_unknown_malformed_and_other_channel_ids_get_the_same_404(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    short, rest, whatsapp = uuid.uuid4().hex[:31], session_id(), session_id()
    for conversation_id, channel in ((short, "socketio"), (rest, "rest"), (whatsapp, "whatsapp"),
                                     ("conv-readable", "socketio"), ("31612345678", "socketio")):
        web_chat(redis_sync, conversation_id, channel=channel)
    agent = await service.agent("eva")

    async def all_known():
        known = {c["conversation_id"] for c in (await agent.get("/api/conversations")).json()}
        return {short, rest, whatsapp, "conv-readable", "31612345678"} <= known

    await eventually(all_known)
    anonymous = service.client()
    for conversation_id in (session_id(), short, rest, whatsapp, "conv-readable", "31612345678", "x" * 40):
        response = await fetch(anonymous, conversation_id)
        assert response.status_code == 404, conversation_id
        assert response.json() == {"detail": "conversation not found"}
    # The agents' endpoint still needs a signed-in agent.
    assert (await anonymous.get(f"/api/conversations/{rest}/transcript")).status_code == 401


@pytest.mark.asyncio
async def test_before_the_stream_the_case_transcript_is_shown(service: Service) -> None:
    conversation_id = session_id()
    assert (await service.bot().post("/api/cases", json=packet(conversation_id))).status_code == 201
    response = await fetch(service.client(), conversation_id)
    assert response.status_code == 200
    assert [line["text"] for line in response.json()] == ["ik heb mijn laptop nooit ontvangen",
                                                          "Dat zoek ik voor u uit."]


@pytest.mark.asyncio
async def test_cors_only_for_widget_origins_and_only_here(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    conversation_id = session_id()
    web_chat(redis_sync, conversation_id)
    client = service.client()
    await eventually(lambda: get_lines(client, conversation_id, 3))
    path = TRANSCRIPT

    allowed = await fetch(client, conversation_id, Origin=SHOP)
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in allowed.headers
    assert "Origin" in allowed.headers["vary"]
    # The widget can read a 404 too (a new session has no history yet).
    missing = await fetch(client, session_id(), Origin=SHOP)
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == SHOP

    other = await fetch(client, conversation_id, Origin="https://evil.example")
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers

    preflight = await client.options(path, headers={"Origin": SHOP, "Access-Control-Request-Method": "GET",
                                                    "Access-Control-Request-Headers": "x-helder-session"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "GET" in preflight.headers["access-control-allow-methods"]
    # The browser sends the session header only if the preflight allows it.
    allowed_headers = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert "x-helder-session" in allowed_headers
    refused = await client.options(path, headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in refused.headers

    # The agents' API gets no CORS at all, even from a widget origin.
    eva = await service.agent("eva")
    api = await eva.get("/api/conversations", headers={"Origin": SHOP})
    assert api.status_code == 200 and "access-control-allow-origin" not in api.headers


@pytest.mark.asyncio
async def test_widget_origins_come_from_the_environment(
    settings: Settings, redis_sync: sync_redis.Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.widget_origin_list == ["http://localhost:8080", "http://127.0.0.1:8080"]
    monkeypatch.setenv("HANDOFF_WIDGET_ORIGINS", " https://shop.example/ ,https://www.shop.example,")
    from_env = Settings(env="local")
    assert from_env.widget_origin_list == ["https://shop.example", "https://www.shop.example"]

    configured = settings.model_copy(update={"widget_origins": "https://shop.example"})
    conversation_id = session_id()
    web_chat(redis_sync, conversation_id)
    async with running(create_app(configured)) as started:
        client = started.client()
        await eventually(lambda: get_lines(client, conversation_id, 3))
        response = await fetch(client, conversation_id, Origin="https://shop.example")
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        response = await fetch(client, conversation_id, Origin=SHOP)
        assert "access-control-allow-origin" not in response.headers


# --- the secret stays out of URLs and logs; ids that are not yours get nothing ----------------------

@pytest.mark.asyncio
async def test_the_session_id_is_never_taken_from_the_url(service: Service, redis_sync: sync_redis.Redis) -> None:
    """The old form put the customer's secret in the path, i.e. in every access log on the way."""
    conversation_id = session_id()
    web_chat(redis_sync, conversation_id)
    client = service.client()
    await eventually(lambda: get_lines(client, conversation_id, 3))
    for url in (f"/public/conversations/{conversation_id}/transcript",
                f"{TRANSCRIPT}?session_id={conversation_id}", f"{TRANSCRIPT}?X-Helder-Session={conversation_id}"):
        response = await client.get(url)
        assert response.status_code in (404, 405), url
        assert "i want to talk to a human" not in response.text, url


@pytest.mark.asyncio
async def test_missing_overlong_and_list_valued_session_headers_get_the_same_404(
    service: Service, redis_sync: sync_redis.Redis,
) -> None:
    mine, theirs = two_web_chats(redis_sync)
    client = service.client()
    await eventually(lambda: get_lines(client, mine, 3))
    await eventually(lambda: get_lines(client, theirs, 3))
    missing = await client.get(TRANSCRIPT)
    assert missing.status_code == 404 and missing.json() == {"detail": "conversation not found"}
    # A valid-looking id nobody has, one hex digit off, too long, two ids in one header, padding.
    near = mine[:-1] + ("0" if mine[-1] != "0" else "1")
    for value in (session_id(), near, mine + "0" * 97, f"{mine}, {theirs}", f"{mine},{theirs}", f" {mine}x"):
        response = await fetch(client, value)
        assert response.status_code == 404, value
        assert response.json() == {"detail": "conversation not found"}
    # Two separate headers are a list to the server; neither transcript comes back.
    both = await client.get(TRANSCRIPT, headers=[("X-Helder-Session", mine), ("X-Helder-Session", theirs)])
    assert both.status_code == 404


@pytest.mark.asyncio
async def test_the_session_id_is_not_in_the_access_log(
    settings: Settings, redis_sync: sync_redis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn logs every request line; with the id in a header that line holds no secret."""
    import asyncio
    import logging

    import uvicorn

    from scripts.stack import free_port

    conversation_id = session_id()
    web_chat(redis_sync, conversation_id)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=True, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.05)
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                lines = await eventually(lambda: get_lines(client, conversation_id, 3))
                assert lines[0]["text"] == "i want to talk to a human"
                await client.options(TRANSCRIPT, headers={"Origin": SHOP, "Access-Control-Request-Method": "GET",
                                                          "Access-Control-Request-Headers": "x-helder-session"})
    finally:
        server.should_exit = True
        await serving
    logged = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert any("GET /public/conversations/transcript" in line for line in logged), logged
    assert not [line for line in logged if conversation_id in line]


def test_the_widget_makes_unguessable_ids_and_sends_them_in_the_header() -> None:
    """The widget's own code (run in node): 128-bit random ids from the Web Crypto API, never
    Math.random, and the history request carries the id in X-Helder-Session, not in its URL."""
    import json
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from contract.channels import SESSION_ID

    source = (Path(__file__).resolve().parents[2] / "web" / "widget" / "helder-widget.js").read_text()
    assert "Math.random" not in source
    function = re.search(r"function newSessionId\(\) \{.*?\n  \}\n", source, re.S)
    assert function, "newSessionId() not found in the widget"
    fetch_history = re.search(r"function fetchHistory\(\) \{.*?\n  \}\n", source, re.S)
    assert fetch_history, "fetchHistory() not found in the widget"
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    script = """
const { webcrypto } = require('crypto');
%s
%s
const ids = [];
let window = { crypto: webcrypto };
for (let i = 0; i < 500; i++) ids.push(newSessionId());
window = { crypto: { getRandomValues: (bytes) => webcrypto.getRandomValues(bytes) } };  // older browsers
for (let i = 0; i < 500; i++) ids.push(newSessionId());
let requested = null;
window = { fetch: (url, options) => { requested = { url, headers: options.headers, credentials: options.credentials };
                                       return new Promise(() => {}); } };
const cfg = { historyUrl: 'https://handoff.example' };
const session = { id: ids[0] };
function used() { return true; }
fetchHistory();
console.log(JSON.stringify({ ids, requested }));
""" % (function.group(0), fetch_history.group(0))  # noqa: UP031 (the script's braces are JavaScript's)
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    ids = out["ids"]
    assert len(set(ids)) == len(ids) == 1000
    assert all(SESSION_ID.match(i) and len(i) == 32 for i in ids)
    # randomUUID is version 4: 122 random bits; the fallback is 128. Every hex digit gets used.
    assert set("".join(ids)) == set("0123456789abcdef")
    requested = out["requested"]
    assert requested["url"] == "https://handoff.example/public/conversations/transcript"
    assert ids[0] not in requested["url"]
    assert requested["headers"]["X-Helder-Session"] == ids[0]
    assert requested["credentials"] == "omit"
