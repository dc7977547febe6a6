"""Helpers for action tests: real rasa-sdk trackers and the project's real domain."""

import asyncio
import datetime as dt
import functools
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.backend.base import Order

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def seeded_backend(tmp_path_factory):
    """Actions use the real SQL backend on a fresh, seeded SQLite file; a call made on an event loop
    (an action calling the backend without ``get_async_backend``) fails the test."""
    from actions.backend import get_backend
    from actions.backend.async_backend import BACKEND_METHODS
    from actions.backend.seed import seed
    from actions.backend.sql import SqlBackend

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'helder.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("KLANTCONTACT_DB_URL", url)
    get_backend.cache_clear()
    backend = get_backend()
    assert isinstance(backend, SqlBackend)
    seed(backend)
    for name in BACKEND_METHODS:
        patch.setattr(backend, name, off_the_event_loop(getattr(backend, name)))
    yield backend
    get_backend.cache_clear()
    patch.undo()


def off_the_event_loop(method):
    """``method``, refusing to run on a thread that runs an event loop (the action server's)."""
    @functools.wraps(method)
    def guarded(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return method(*args, **kwargs)
        raise AssertionError(f"backend.{method.__name__} called on the event loop (use get_async_backend)")
    return guarded


@pytest.fixture(scope="session")
def domain() -> Dict[str, Any]:
    return Domain.load(str(ROOT / "domain")).as_dict()


def make_tracker(
    text: str = "",
    intent: Optional[str] = None,
    slots: Optional[Dict[str, Any]] = None,
    language: str = "nl",
    entities: Optional[List[Dict[str, Any]]] = None,
    ranking: Optional[List[Dict[str, Any]]] = None,
    detection: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    events_after: Optional[List[Dict[str, Any]]] = None,
    sender_id: str = "test-conversation",
) -> Tracker:
    """A tracker whose latest message is ``text`` classified as ``intent``."""
    all_slots = {"language": language, "register": "u", "disclosed": True, "consecutive_misses": 0.0}
    all_slots.update(slots or {})
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
    }
    if detection is not None:
        latest["language_detection"] = detection
    history = list(events or []) + [{"event": "user", "text": text, "parse_data": latest, "metadata": {}}]
    history += list(events_after or [])
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message=latest,
        events=history,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def responses(dispatcher: CollectingDispatcher) -> List[str]:
    return [m.get("response") for m in dispatcher.messages]


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


class CancelledThenShipped:
    """A customer who cancelled one order and has another one on its way (newest first)."""

    def orders(self, customer_id):
        return [Order("2024120001", customer_id, ["waterkoker"], "cancelled", dt.date(2024, 12, 1)),
                Order("2024110002", customer_id, ["airfryer"], "shipped", dt.date(2024, 11, 20),
                      expected_on=dt.date(2024, 12, 3), carrier="PostNL", tracking="3SABC123")]
