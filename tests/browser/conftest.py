"""The agent console in a real browser, against the real handoff service.

Started once per session: a private redis-server (``redis_url`` from ``tests/conftest.py``), a fake
Rasa HTTP server on loopback that records what the service sends it (``tests/fakes/rasa.py``), the
handoff service itself (``python -m handoff`` in a subprocess, this interpreter: run the tests with
``.venv-handoff``) and Debian's chromium driven by Playwright. Rasa's event broker is played by the
tests: they ``XADD`` tracker events to the ``handoff:events`` stream, as ``bot/event_broker.py`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest
import redis

from contract import keys
from scripts.stack import free_port
from tests.fakes import packets
from tests.fakes.rasa import FakeRasa

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EVENTS_STREAM = "handoff:events"
AGENTS = {"eva": "Eva de Jong", "bob": "Bob de Boer"}
PASSWORD = "console-test-" + uuid.uuid4().hex[:12]


# ---- fake Rasa ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa(jwt_secret="fake-rasa-jwt-" + uuid.uuid4().hex)
    yield fake
    fake.close()


# ---- the handoff service ------------------------------------------------------------------------


@dataclass
class Service:
    """The running handoff service and the levers the tests pull on it."""

    url: str
    api_token: str
    redis: redis.Redis
    log_path: Path
    env: Dict[str, str]
    widget_origin: str = ""  # a shop page origin allowed to fetch the widget's history (CORS)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def open_case(self, packet: Dict[str, Any]) -> Dict[str, Any]:
        """What the bot does on handoff: ``POST /api/cases`` with the context packet."""
        response = httpx.post(f"{self.url}/api/cases", json=packet, timeout=10,
                              headers={"Authorization": f"Bearer {self.api_token}"})
        assert response.status_code in (200, 201), f"{response.status_code} {response.text}\n{self.log_tail()}"
        return response.json()

    def nobody_available(self) -> None:
        """Forgets every agent's presence (consoles of earlier tests may still count for 60 s)."""
        for key in self.redis.scan_iter(keys.presence("*")):
            self.redis.delete(key)

    def publish(self, conversation_id: str, event: Dict[str, Any]) -> None:
        """What Rasa's event broker does with every tracker event."""
        event = {"sender_id": conversation_id, **event}
        self.redis.xadd(EVENTS_STREAM, {"sender_id": conversation_id,
                                        "event": json.dumps(event, ensure_ascii=False)})

    def agent_client(self, username: str) -> AgentClient:
        """An agent signed in over HTTP (no browser), e.g. a colleague on another desk."""
        client = httpx.Client(base_url=self.url, timeout=10)
        response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return AgentClient(client, response.json()["csrf_token"])


@dataclass
class AgentClient:
    client: httpx.Client
    csrf_token: str

    def post(self, path: str, body: Optional[Dict[str, Any]] = None) -> httpx.Response:
        return self.client.post(path, json=body, headers={"X-CSRF-Token": self.csrf_token})

    def close(self) -> None:
        self.client.close()


def _wait_for_consumer_group(client: redis.Redis, timeout: float = 15.0) -> None:
    """Events published before the service's consumer group exists could be skipped: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(group["name"] in ("handoff", b"handoff") for group in client.xinfo_groups(EVENTS_STREAM)):
                return
        except redis.ResponseError:
            pass  # the stream does not exist yet
        time.sleep(0.1)


@pytest.fixture(scope="session")
def service(redis_url: str, fake_rasa: FakeRasa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    port = free_port()
    widget_origin = f"http://127.0.0.1:{free_port()}"
    log_path = tmp_path_factory.mktemp("handoff") / "handoff.log"
    api_token = "bot-token-" + uuid.uuid4().hex
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HANDOFF_ENV": "local",
        "HANDOFF_PORT": str(port),
        "HANDOFF_REDIS_URL": redis_url,
        "HANDOFF_RASA_URL": fake_rasa.url,
        "HANDOFF_RASA_JWT_SECRET": fake_rasa.jwt_secret,
        "HANDOFF_API_TOKEN": api_token,
        "HANDOFF_SESSION_SECRET": "session-" + uuid.uuid4().hex,
        "HANDOFF_TEST_PASSWORD": PASSWORD,
        "HANDOFF_WIDGET_ORIGINS": widget_origin,
    }
    for username, name in AGENTS.items():
        result = subprocess.run(
            [sys.executable, "-m", "handoff.agents", "add", username, "--name", name,
             "--password-env", "HANDOFF_TEST_PASSWORD"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, f"creating agent {username} failed:\n{result.stdout}\n{result.stderr}"

    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "handoff"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    running = Service(url=url, api_token=api_token, redis=client, log_path=log_path, env=env,
                      widget_origin=widget_origin)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the handoff service exited:\n{running.log_tail()}"
            assert time.monotonic() < deadline, f"the handoff service did not become healthy:\n{running.log_tail()}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        _wait_for_consumer_group(client)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        client.close()


# ---- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM}: run scripts/install_browser.sh "
                    "(Debian: apt-get install chromium) or set CHROMIUM=/path/to/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@contextlib.contextmanager
def fresh_page(browser: Any, timeout_ms: int, console_errors: bool = False) -> Iterator[Any]:
    """A page in a fresh browser profile (no cookies, empty storage); errors on it fail the test.

    With ``console_errors`` the browser console's errors count too (a Content-Security-Policy
    violation or a failed load shows up there), except those caused by going offline on purpose.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB",
                                  timezone_id="Europe/Amsterdam")
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    errors: List[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if console_errors:
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" and "ERR_INTERNET_DISCONNECTED" not in message.text else None)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Any, service: Service) -> Iterator[Any]:
    """The console page in a fresh browser profile per test."""
    with fresh_page(browser, 10_000) as page:
        yield page


def sign_in(page: Any, service: Service, username: str = "eva") -> None:
    """Signs in through the login form and waits for the console."""
    page.goto(f"{service.url}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{service.url}/")


# ---- conversations ------------------------------------------------------------------------------


def packet(conversation_id: str, **overrides: Any) -> Dict[str, Any]:
    """A context packet as the bot sends it, about a defective föhn (Dutch), just now."""
    now = time.time()
    return packets.packet(conversation_id, **{
        "identity": {"customer_id": "48213377", "name": "Sanne de Vries",
                     "verified_by": "customer_number+postcode", "verified_at": now - 120},
        "problem_description": "mijn föhn is na twee dagen kapot gegaan",
        "intent": "defective_product",
        "entities": {"product": "föhn", "order_number": "2024118832"},
        "bot_attempts": ["order_status:order 2024118832 delivered", "defective_product:no_automation"],
        "transcript": [
            {"from": "customer", "text": "mijn föhn is na twee dagen kapot gegaan", "at": now - 180},
            {"from": "bot", "text": "Ik ben de digitale assistent. Wat is uw klantnummer en postcode?",
             "at": now - 170},
        ],
        **overrides,
    })


def user_event(text: str, at: Optional[float] = None, channel: str = "socketio") -> Dict[str, Any]:
    """A Rasa ``user`` event as the event broker publishes it."""
    return {"event": "user", "timestamp": at or time.time(), "text": text, "input_channel": channel,
            "message_id": uuid.uuid4().hex, "metadata": {},
            "parse_data": {"text": text, "intent": {"name": "defective_product", "confidence": 0.94},
                           "entities": []}}


def bot_event(text: str, at: Optional[float] = None, **metadata: Any) -> Dict[str, Any]:
    """A Rasa ``bot`` event; agent messages carry ``agent_id``/``agent_name`` in metadata."""
    return {"event": "bot", "timestamp": at or time.time(), "text": text,
            "data": {"elements": None, "quick_replies": None, "buttons": None, "attachment": None,
                     "image": None, "custom": None},
            "metadata": metadata}


def new_conversation_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
