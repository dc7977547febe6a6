"""Fixtures for the handoff service: a private Redis, a fake Rasa, the app and signed-in clients.

Runs in the handoff environment (``.venv-handoff``). The real Rasa is exercised by the end-to-end
tests; here a small HTTP server on loopback stands in for it, records what it receives and checks
the admin JWT like Rasa would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, AsyncIterator, Callable, Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

# These tests run in the handoff environment (.venv-handoff). Under the bot's Python 3.10 (e.g. a
# bare `pytest` over tests/) they are left out instead of failing on imports.
HANDOFF_ENVIRONMENT = sys.version_info >= (3, 11) and importlib.util.find_spec("fastapi") is not None
if HANDOFF_ENVIRONMENT:
    import httpx
    import jwt
    import pytest_asyncio
    import redis as sync_redis
    from fastapi import FastAPI

    from handoff.agents import add_agent
    from handoff.app import create_app
    from handoff.settings import Settings
    from handoff.store import Store

    async_fixture = pytest_asyncio.fixture
else:
    collect_ignore = ["test_api.py"]
    async_fixture = pytest.fixture

RASA_SECRET = "test-rasa-jwt-secret-0123456789abcdef"
API_TOKEN = "test-bot-token-0123456789abcdef0123"
SESSION_SECRET = "test-session-secret-0123456789abcdef"
PASSWORDS = {"eva": "eva-password-1", "tom": "tom-password-2", "ana": "ana-password-3"}
NAMES = {"eva": "Eva de Jong", "tom": "Tom Peeters", "ana": "Ana Silva"}
BOT_HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}


# ``redis_url`` (a private redis-server on a free port) comes from tests/conftest.py.


@pytest.fixture
def redis_sync(redis_url: str) -> sync_redis.Redis:
    """A plain client on the private server, flushed before and after each test."""
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


class FakeRasa:
    """Rasa's HTTP API as far as the handoff service uses it, on a loopback port."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.trackers: Dict[str, Dict[str, Any]] = {}
        self.fail_status: Optional[int] = None
        # Fails (HTTP 500, after recording it) each request this returns True for: one step of a
        # workflow failing while the others work.
        self.fail_when: Optional[Callable[[Dict[str, Any]], bool]] = None
        self.drop_connections = False
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                if fake.drop_connections:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                role = None
                try:
                    claims = jwt.decode(auth.removeprefix("Bearer "), RASA_SECRET, algorithms=["HS256"])
                    role = claims.get("user", {}).get("role")
                except jwt.PyJWTError:
                    pass
                record = {"method": self.command, "path": unquote(parts.path),
                          "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                          "json": json.loads(raw) if raw else None, "role": role}
                with fake._lock:
                    fake.requests.append(record)
                if role != "admin":
                    return self._reply(401, {"message": "User has insufficient permission."})
                if fake.fail_status:
                    return self._reply(fake.fail_status, {"message": "broken"})
                if fake.fail_when is not None and fake.fail_when(record):
                    return self._reply(500, {"message": "broken"})
                segments = record["path"].strip("/").split("/")
                conversation_id = segments[1] if len(segments) > 1 else ""
                if self.command == "GET" and record["path"].endswith("/tracker"):
                    return self._reply(200, fake.trackers.get(conversation_id, {
                        "sender_id": conversation_id, "slots": {}, "events": [], "latest_message": {},
                        "latest_input_channel": None}))
                return self._reply(200, {"sender_id": conversation_id, "events": []})

            do_GET = _handle
            do_POST = _handle

            def _reply(self, status: int, body: Dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        """Forgets requests and trackers, works again."""
        with self._lock:
            self.requests.clear()
        self.trackers.clear()
        self.fail_status = None
        self.fail_when = None
        self.drop_connections = False

    def calls(self, conversation_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Recorded requests (of one conversation)."""
        with self._lock:
            found = list(self.requests)
        if conversation_id is None:
            return found
        return [r for r in found if r["path"].startswith(f"/conversations/{conversation_id}/")]

    def close(self) -> None:
        """Stops the server."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def fake_rasa_server() -> FakeRasa:
    """One fake Rasa for the session."""
    fake = FakeRasa()
    yield fake
    fake.close()


@pytest.fixture
def fake_rasa(fake_rasa_server: FakeRasa) -> FakeRasa:
    """The fake Rasa, clean for this test."""
    fake_rasa_server.reset()
    yield fake_rasa_server
    fake_rasa_server.reset()


@pytest.fixture
def settings(redis_url: str, fake_rasa: FakeRasa) -> Settings:
    """Production-like settings: real secrets, not ``local``."""
    return Settings(
        env="test", redis_url=redis_url, rasa_url=fake_rasa.url, rasa_jwt_secret=RASA_SECRET,
        api_token=API_TOKEN, session_secret=SESSION_SECRET,
        average_handling_minutes=6, rasa_timeout_seconds=3,
    )


class Clock:
    """A controllable clock: real time until set, then moved by hand."""

    def __init__(self) -> None:
        self.fixed: Optional[datetime] = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(timezone.utc)

    def set(self, moment: datetime) -> None:
        self.fixed = moment.astimezone(timezone.utc)


@pytest.fixture
def clock() -> Clock:
    """The clock the app under test uses."""
    return Clock()


class Service:
    """A started app with helpers to sign agents in."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._clients: List[httpx.AsyncClient] = []

    @property
    def store(self) -> Store:
        return self.app.state.store

    def client(self) -> httpx.AsyncClient:
        """A new client (own cookie jar) on the app."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")
        self._clients.append(client)
        return client

    def bot(self) -> httpx.AsyncClient:
        """A client with the bot's token."""
        client = self.client()
        client.headers.update(BOT_HEADERS)
        return client

    async def agent(self, username: str = "eva", *, present: bool = False) -> httpx.AsyncClient:
        """A client signed in as ``username`` (created if needed), CSRF header preset."""
        if await self.store.get_agent(username) is None:
            await add_agent(self.store, username, NAMES[username], PASSWORDS[username])
        client = self.client()
        response = await client.post("/auth/login", json={"username": username, "password": PASSWORDS[username]})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        if present:
            await self.store.set_present(username)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Service]:
    """Runs the app's lifespan around the block (what uvicorn does at start and stop)."""
    async with app.router.lifespan_context(app):
        service = Service(app)
        try:
            yield service
        finally:
            await service.aclose()


@async_fixture
async def service(settings: Settings, redis_sync: sync_redis.Redis, clock: Clock) -> AsyncIterator[Service]:
    """The app, started on a flushed private Redis with the fake Rasa."""
    async with running(create_app(settings, clock=clock)) as started:
        yield started


def packet(conversation_id: str, **changes: Any) -> Dict[str, Any]:
    """A context packet like ``actions/handoff.py: context_packet`` sends."""
    body = {
        "conversation_id": conversation_id,
        "reason": "complexity",
        "language": "nl",
        "channel": "socketio",
        "identity": {"customer_id": "48213377", "name": "Sanne Bakker", "verified_by": "postcode",
                     "verified_at": "2024-05-01T10:00:00Z"},
        "problem_description": "ik heb mijn laptop nooit ontvangen",
        "intent": "order_status",
        "entities": {"order_number": "2024118832"},
        "bot_attempts": [{"action": "action_order_status", "result": "lost"}],
        "transcript": [{"from": "customer", "text": "ik heb mijn laptop nooit ontvangen", "at": 1714557600.0},
                       {"from": "bot", "text": "Dat zoek ik voor u uit.", "at": 1714557601.0}],
    }
    body.update(changes)
    return body


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Polls an async ``check`` until it returns something truthy (the consumer runs on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
