"""The WhatsApp channel on Rasa's real Sanic app (rasa.core.run.configure_app), served on a
loopback port; a fake Graph API receives what it sends; a private Redis keeps its state.

The assistant itself is a stub that records the UserMessages the channel hands it."""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import aiohttp
import pytest
import pytest_asyncio
import redis

from scripts.fake_graph_api import FakeGraphAPI
from scripts.stack import free_port, parse_redis_url
from scripts.whatsapp_customer import PHONE_NUMBER_ID, sign

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ACCESS_TOKEN = "test-access-token-EAAG"


@pytest.fixture
def stack_channels(redis_url, tmp_path, monkeypatch):
    """``(env, channels)``: the channels credentials.yml configures, read with the environment
    scripts/stack.py gives the Rasa server (no WHATSAPP_* of the machine's own)."""
    import os

    from rasa.core.run import create_http_input_channels

    from scripts.stack import ROOT, Stack

    for name in [n for n in os.environ if n.startswith("WHATSAPP_")]:
        monkeypatch.delenv(name)
    env = Stack(redis_url=redis_url, jwt_secret="x", log_dir=tmp_path).env()
    for name, value in env.items():
        if name.startswith(("WHATSAPP_", "REDIS_")):
            monkeypatch.setenv(name, value)
    return env, create_http_input_channels(None, str(ROOT / "credentials.yml"))


@pytest.fixture
def graph():
    fake = FakeGraphAPI(access_token=ACCESS_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def store(redis_url):
    """The channel's Redis database, empty before and after each test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def credentials(redis_url: str, graph_url: str, **overrides: Any) -> Dict[str, Any]:
    """The channel's section of credentials.yml, as Rasa hands it over (env vars substituted)."""
    env = parse_redis_url(redis_url)
    values = {
        "verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID, "graph_api_url": graph_url,
        "redis_host": env["REDIS_HOST"], "redis_port": env["REDIS_PORT"], "redis_db": env["REDIS_DB"],
        "redis_password": env["REDIS_PASSWORD"], "max_message_age_seconds": 600,
        "template_nl": "helder_reply_nl", "template_en": "helder_reply_en",
    }
    values.update(overrides)
    return values


@functools.lru_cache(maxsize=1)
def _language_domain() -> Any:
    """A domain with the assistant's ``language`` slot (domain/session.yml), built once."""
    from rasa.shared.core.domain import Domain

    return Domain.from_dict({"slots": {"language": {
        "type": "categorical", "values": ["nl", "en"], "influence_conversation": False,
        "mappings": [{"type": "custom"}]}}})


class RecordingAgent:
    """Stands in for Rasa's Agent: records what the channel passes to the assistant, and has
    Rasa's in-memory tracker store for the conversations the channel reads (their language)."""

    def __init__(self) -> None:
        from rasa.core.tracker_store import InMemoryTrackerStore

        self.messages: List[Any] = []
        self.domain = _language_domain()
        self.tracker_store = InMemoryTrackerStore(self.domain)

    async def handle_message(self, message: Any) -> None:
        self.messages.append(message)

    async def set_language(self, sender_id: str, language: str) -> None:
        """Stores a conversation whose ``language`` slot is ``language``, as the assistant would."""
        from rasa.shared.core.events import SlotSet, UserUttered
        from rasa.shared.core.trackers import DialogueStateTracker

        tracker = await self.tracker_store.retrieve(sender_id) or DialogueStateTracker.from_events(
            sender_id, [UserUttered("…", input_channel="whatsapp")], slots=self.domain.slots)
        tracker.update(SlotSet("language", language))
        await self.tracker_store.save(tracker)


@dataclass
class Webhook:
    """The running app, its WhatsApp channel and what reached the (stub) assistant."""

    url: str
    channel: Any
    agent: RecordingAgent
    session: aiohttp.ClientSession

    @property
    def received(self) -> List[Any]:
        return self.agent.messages

    async def post(self, payload: Any, signature: Optional[str] = "valid", raw: Optional[bytes] = None):
        """POSTs a delivery; ``signature`` "valid" signs it with the app secret, None omits it."""
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            headers["X-Hub-Signature-256"] = sign(APP_SECRET, body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self.session.post(f"{self.url}/webhook", data=body, headers=headers) as response:
            text = await response.text()
        await self.channel.wait_until_idle()
        return response.status, text

    async def get(self, path: str, params: Optional[Dict[str, str]] = None):
        async with self.session.get(f"{self.url}{path}", params=params) as response:
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def serving(channel: Any, configure: Optional[Callable[[Any], None]] = None):
    """Rasa's real Sanic app with ``channel`` on a loopback port; yields (base url, agent)."""
    from sanic import Sanic

    from rasa.core.run import configure_app

    Sanic.test_mode = True  # one Rasa app per test in one process
    app = configure_app([channel], port=free_port())
    if configure is not None:
        configure(app)
    agent = RecordingAgent()
    app.ctx.agent = agent
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}", agent
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


@contextlib.asynccontextmanager
async def whatsapp_webhook(redis_url: str, graph_url: str, **overrides: Any):
    """The WhatsApp channel (credentials with ``overrides``) on a running app."""
    from bot.channels.whatsapp import WhatsAppInput

    channel = WhatsAppInput.from_credentials(credentials(redis_url, graph_url, **overrides))
    async with serving(channel) as (url, agent):
        session = aiohttp.ClientSession()
        try:
            yield Webhook(f"{url}/webhooks/whatsapp", channel, agent, session)
        finally:
            await session.close()


@pytest_asyncio.fixture
async def webhook(redis_url, graph, store):
    async with whatsapp_webhook(redis_url, graph.url) as running:
        yield running
