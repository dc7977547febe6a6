"""Fixtures for the handoff service: a private Redis, a fake Rasa, the app and signed-in clients.

Runs in the handoff environment (``.venv-handoff``). The real Rasa is exercised by the end-to-end
tests; here a small HTTP server on loopback stands in for it (tests/fakes/rasa.py), records what
it receives and checks the admin JWT like Rasa would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, List, Optional

import pytest

from tests.fakes.rasa import FakeRasa

# These tests run in the handoff environment (.venv-handoff). Under the bot's Python 3.10 (e.g. a
# bare `pytest` over tests/) they are left out instead of failing on imports.
HANDOFF_ENVIRONMENT = sys.version_info >= (3, 11) and importlib.util.find_spec("fastapi") is not None
if HANDOFF_ENVIRONMENT:
    import httpx
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


@pytest.fixture(scope="session")
def fake_rasa_server() -> FakeRasa:
    """One fake Rasa for the session."""
    fake = FakeRasa(RASA_SECRET)
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


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Polls an async ``check`` until it returns something truthy (the consumer runs on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
