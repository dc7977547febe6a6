"""The real stack for end-to-end tests: Rasa with the trained model, actions, Redis."""

import contextlib
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from bot.language import get_detector
from scripts.model import ensure_model
from scripts.stack import Stack, free_port


class Customer:
    """One customer talking to the bot over the REST channel."""

    def __init__(self, stack: Stack, metadata: Optional[Dict[str, Any]] = None) -> None:
        self.stack = stack
        self.sender = f"e2e-{uuid.uuid4().hex}"
        self.metadata = metadata or {}
        self.turns = 0

    def say(self, text: str) -> List[str]:
        """Sends one message; returns the bot's reply texts."""
        self.turns += 1
        response = requests.post(
            f"{self.stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": self.sender, "message": text, "metadata": self.metadata},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return [m.get("text", "") for m in response.json()]

    def tracker(self) -> Dict[str, Any]:
        response = requests.get(
            f"{self.stack.rasa_url}/conversations/{self.sender}/tracker",
            headers=self.stack.auth_headers(), timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def slots(self) -> Dict[str, Any]:
        return self.tracker()["slots"]

    def bot_actions(self) -> List[str]:
        return [e.get("metadata", {}).get("utter_action") for e in self.tracker()["events"] if e["event"] == "bot"]


def assert_language(replies: List[str], language: str) -> None:
    """Every reply of three words or more is in ``language``."""
    assert replies, "expected a reply"
    detector = get_detector()
    for reply in replies:
        detection = detector.detect(reply.split(" / ")[0])
        if detection.words >= 3:
            assert detection.language == language, f"{reply!r} is not {language}"


@pytest.fixture(scope="session")
def stack(redis_url, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    database = tmp_path_factory.mktemp("db") / "helder.db"
    stack = Stack(redis_url=redis_url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  web_port=free_port(), model=ensure_model(),
                  jwt_secret=uuid.uuid4().hex, log_dir=log_dir,
                  extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{database}"})
    with started(stack):
        yield stack


@contextlib.contextmanager
def started(stack: Stack, start: Optional[Callable[[], Any]] = None) -> Iterator[Stack]:
    """Starts the stack (or runs ``start``), shows the servers' logs if that fails, always stops it."""
    try:
        (start or stack.start)()
    except BaseException:
        stack.stop()
        for name in ("handoff", "actions", "rasa"):
            path = stack.log_dir / f"{name}.log"
            if path.exists():
                print(f"--- {name}.log ---\n" + path.read_text()[-4000:])
        raise
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def customer(stack):
    def make(metadata: Optional[Dict[str, Any]] = None) -> Customer:
        return Customer(stack, metadata)
    return make
