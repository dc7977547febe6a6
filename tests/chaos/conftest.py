"""Fault injection against the real stack (``make chaos``): a Redis the tests can restart, a second
Rasa server and handoff service on the same Redis, services stopped while customers talk.

Reuses the end-to-end stack (tests/e2e/conftest.py) and scripts/stack.py; only the Redis differs:
it is started here so a test can stop it and start it again on the same port and directory.
"""

import time
import uuid
from pathlib import Path
from typing import Dict, Optional

import pytest
import requests

from scripts.clients import Agent, wait_until
from scripts.stack import ROOT, RedisServer, redis_ping
from tests.e2e import conftest as e2e_conftest
from tests.e2e.conftest import assert_language  # noqa: F401 (the chaos tests import it from here)

stack = e2e_conftest.stack  # the e2e stack fixture, here on the restartable Redis below


class RestartableRedis(RedisServer):
    """The shared private Redis (AOF, ``appendfsync everysec``), waiting for the AOF to be loaded
    after a start, and with a crash restart."""

    def start(self, timeout: float = 10) -> None:
        super().start(timeout)
        # Loading the AOF: PING answers -LOADING until the data is back; wait for real data.
        import redis as redis_py
        client = redis_py.Redis.from_url(self.url)
        wait_until(lambda: _loaded(client), timeout=20)
        client.close()

    def crash(self) -> None:
        """Crash stop (SIGKILL) after > 1 s, so everything written so far is in the AOF."""
        time.sleep(1.5)
        self.kill()
        assert not redis_ping(self.url)

    def restart(self, down_for: float = 1.0) -> None:
        self.crash()
        time.sleep(down_for)
        self.start()


def _loaded(client) -> bool:
    try:
        return client.info("persistence").get("loading") == 0
    except Exception:  # noqa: BLE001 - still loading or not up yet
        return False


@pytest.fixture(scope="session")
def chaos_redis(tmp_path_factory):
    directory = tmp_path_factory.mktemp("redis-chaos")
    server = RestartableRedis(directory, log=directory / "redis.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(chaos_redis):
    """Overrides tests/conftest.py: the e2e ``stack`` fixture runs on the restartable Redis."""
    return chaos_redis.url


def wait_healthy(url: str, timeout: float = 30) -> None:
    """The handoff service answers /health with Redis reachable and its push subscription live."""
    def ok() -> bool:
        try:
            response = requests.get(f"{url}/health", timeout=2)
            body = response.json()
            return response.status_code == 200 and body.get("redis") is True and body.get("pushes") is True
        except requests.RequestException:
            return False
    wait_until(ok, timeout=timeout, interval=0.2)


@pytest.fixture(scope="session")
def agent_passwords(stack) -> Dict[str, str]:
    passwords = {"eva": uuid.uuid4().hex, "noah": uuid.uuid4().hex}
    stack.add_agent("eva", "Eva de Jong", passwords["eva"])
    stack.add_agent("noah", "Noah Bakker", passwords["noah"])
    return passwords


@pytest.fixture
def sign_in(stack, agent_passwords):
    """sign_in("eva", url=None) → an Agent on the given handoff instance (default: the stack's)."""
    signed_in = []

    def make(username: str, url: Optional[str] = None) -> Agent:
        agent = Agent(url or stack.handoff_url, username, agent_passwords[username])
        signed_in.append(agent)
        return agent

    yield make
    for agent in signed_in:
        agent.close()


def handoff_python() -> str:
    return str(ROOT / ".venv-handoff" / "bin" / "python")


def answered(call, *args, **kwargs) -> requests.Response:
    """Calls the handoff API once; a 503 ("storage unavailable, try again") fails the test.

    Right after a Redis restart every pooled connection of the service is stale; the service
    retries a command on a fresh connection (handoff/app.py), so no request may fail for it.
    """
    response = call(*args, **kwargs)
    assert response.status_code != 503, f"the handoff API answered 503: {response.text}"
    return response


def pytest_ignore_collect(collection_path, config):
    """Collected only when named (``make chaos`` runs ``pytest tests/chaos``): never by a plain
    ``pytest`` (pytest.ini's testpaths is ``tests``) or ``pytest tests``; these tests stop services."""
    here = Path(__file__).resolve().parent
    for arg in config.invocation_params.args:
        if arg.startswith("-"):
            continue
        named = (Path(config.invocation_params.dir) / str(arg).split("::")[0]).resolve()
        if named == here or here in named.parents:
            return None
    return True
