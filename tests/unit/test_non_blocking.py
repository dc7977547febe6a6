"""Actions do not block the action server's event loop while the backend or the handoff service works.

Each test makes a slow call that can only finish once something else has run on the same event
loop (another conversation's action, a coroutine): a call made on the loop itself would wait for
that forever, so these tests fail (after a few seconds) rather than pass slowly if a call blocks.
Every other action test runs with the guard in ``tests/unit/conftest.py``: a backend call made on
an event loop fails there at once.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import AsyncBackend, get_backend
from actions.backend.async_backend import BACKEND_METHODS
from actions.backend.base import CustomerBackend
from actions.escalation import ActionHandoff
from actions.problems import ActionSolveProblem
from tests.unit.conftest import make_tracker, responses, slot_events

# How long a test waits for the other side before it calls the loop blocked.
WAIT_SECONDS = 5.0


async def once_set(event: threading.Event, what: str) -> None:
    """Returns, on the loop, once another thread has set ``event``; fails after WAIT_SECONDS."""
    for _ in range(int(WAIT_SECONDS / 0.01)):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never happened")


def test_two_conversations_wait_for_the_backend_at_the_same_time(domain, monkeypatch):
    """Each call returns only once the other conversation's call is waiting too."""
    both_waiting = threading.Barrier(2, timeout=WAIT_SECONDS)

    def orders(customer_id):
        both_waiting.wait()
        return []
    monkeypatch.setattr(get_backend(), "orders", orders)

    async def two_conversations():
        runs = [ActionSolveProblem().run(dispatcher, make_tracker(slots={"customer_id": "48213377",
                                                                         "problem_intent": "order_status"},
                                                                  sender_id=f"c-{n}"), domain)
                for n, dispatcher in enumerate(dispatchers)]
        return await asyncio.gather(*runs)

    dispatchers = [CollectingDispatcher(), CollectingDispatcher()]
    for dispatcher, events in zip(dispatchers, asyncio.run(two_conversations())):
        assert responses(dispatcher) == ["utter_no_orders", "utter_anything_else"]
        assert slot_events(events)["bot_attempts"] == ["order_status:no_orders"]


def test_the_loop_runs_while_a_backend_call_waits():
    called, loop_ran = threading.Event(), threading.Event()

    class Slow:
        def get_customer(self, customer_id):
            called.set()
            assert loop_ran.wait(WAIT_SECONDS), "the event loop was blocked by the backend call"
            return None

    async def meanwhile_on_the_loop():
        await once_set(called, "the backend call")
        loop_ran.set()

    async def both():
        return await asyncio.gather(AsyncBackend(Slow()).get_customer("48213377"), meanwhile_on_the_loop())

    assert asyncio.run(both()) == [None, None]


def test_the_async_backend_offers_every_backend_method_and_nothing_else():
    assert BACKEND_METHODS == {name for name in vars(CustomerBackend) if not name.startswith("_")}
    backend = AsyncBackend(get_backend())
    assert all(callable(getattr(backend, name)) for name in BACKEND_METHODS)
    assert not hasattr(backend, "transaction")  # the SQL backend's plumbing is not for actions


def test_backend_errors_reach_the_action_unchanged():
    from actions.backend import BackendUnavailable

    class Down:
        def orders(self, customer_id):
            raise BackendUnavailable("timeout")

    with pytest.raises(BackendUnavailable, match="timeout"):
        asyncio.run(AsyncBackend(Down()).orders("48213377"))


@pytest.fixture
def held_handoff_service(monkeypatch):
    """A handoff service that answers only once ``release`` is set (or says 503 after WAIT_SECONDS)."""
    arrived, release = threading.Event(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            held = release.wait(WAIT_SECONDS)
            body = b'{"case_id": "c_9", "status": "queued", "position": 1, "estimate_minutes": 3}'
            self.send_response(201 if held else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HANDOFF_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield arrived, release
    server.shutdown()
    server.server_close()


def test_the_loop_runs_while_the_handoff_service_answers(domain, held_handoff_service):
    arrived, release = held_handoff_service

    async def meanwhile_on_the_loop():
        await once_set(arrived, "the request to the handoff service")
        release.set()

    async def both():
        dispatcher = CollectingDispatcher()
        events, _ = await asyncio.gather(ActionHandoff().run(dispatcher, make_tracker("medewerker", "request_human"),
                                                             domain), meanwhile_on_the_loop())
        return dispatcher, events

    dispatcher, events = asyncio.run(both())
    assert responses(dispatcher) == ["utter_handoff_request", "utter_handoff_queued"]
    assert slot_events(events)["handoff_case_id"] == "c_9"
