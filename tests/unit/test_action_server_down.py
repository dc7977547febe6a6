"""bot/action_server_down.py in Rasa's own classes: an action server that refuses, is slow or breaks
gives one apology in the customer's language, the request for a person and a pause; never an
exception, never the 300 s wait, never a second apology; the breaker opens on repeated timeouts,
not on one. (Against the whole stack: tests/chaos.)"""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import rasa.core.actions.action as rasa_action
from rasa.core.actions.action import ActionExecutionRejection, ActionExtractSlots, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, BotUttered, ConversationPaused, SessionStarted, SlotSet,
                                     UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import action_server_down, rasa_patches
from bot.language import get_detector
from scripts.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
REFUSED = EndpointConfig(f"http://127.0.0.1:{free_port()}/webhook")  # nothing listens there
MESSAGES = {"nl": "waar blijft mijn bestelling nou", "en": "where is my order please"}


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain"))


@pytest.fixture
def nlg(domain):
    return TemplatedNaturalLanguageGenerator(domain.responses)


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    """Rasa as the server's entry point (bot/server.py) changes it."""
    rasa_patches.install()


@pytest.fixture(autouse=True)
def closed_breaker(patched_rasa):
    """Each test starts with an action server that has not failed yet."""
    RemoteAction.run.breaker.succeeded()
    RemoteAction.run.recent_timeouts.clear()
    yield
    RemoteAction.run.breaker.succeeded()
    RemoteAction.run.recent_timeouts.clear()


def tracker_after(domain, text, *, slots=None, metadata=None, paused=False, sender="c1"):
    """A conversation whose latest event is the customer's ``text`` (parsed, with its language)."""
    parse_data = {"intent": {"name": "order_status", "confidence": 0.9}, "entities": [], "text": text,
                  "language_detection": get_detector().detect(text).as_dict()}
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    events += [SlotSet(name, value) for name, value in (slots or {}).items()]
    events += [ConversationPaused()] if paused else []
    events.append(UserUttered(text, parse_data["intent"], [], parse_data, metadata=metadata))
    return DialogueStateTracker.from_events(sender, events, domain.slots)


def run(action, tracker, nlg, domain):
    return asyncio.run(action.run(CollectingOutputChannel(), nlg, tracker, domain))


def order_status(endpoint):
    """A custom action of the assistant, called at ``endpoint``."""
    return RemoteAction("action_order_status", endpoint)


def apologies(events):
    return [e for e in events if isinstance(e, BotUttered)]


def slots_of(events):
    return {e.key: e.value for e in events if isinstance(e, SlotSet)}


def test_installed_by_the_servers_patches():
    assert isinstance(RemoteAction.run.breaker, action_server_down.Breaker)
    assert rasa_action.DEFAULT_REQUEST_TIMEOUT == 8.0, "Rasa's 300 s per call"


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_refused_call_is_one_apology_in_the_customers_language_a_request_and_a_pause(domain, nlg, language):
    tracker = tracker_after(domain, MESSAGES[language])
    events = run(RemoteAction("action_order_status", REFUSED), tracker, nlg, domain)
    [apology] = apologies(events)
    expected = {"nl": "er gaat bij ons iets mis", "en": "something is going wrong on our side"}[language]
    assert expected in apology.text and apology.metadata["event"] == "service_trouble"
    assert slots_of(events) == {"language": language, "service_trouble": True, "handoff_pending": "backend_failure"}
    assert isinstance(events[-1], ConversationPaused)


def test_informal_dutch_gets_the_je_form(domain, nlg):
    tracker = tracker_after(domain, "waar blijft mijn bestelling", slots={"language": "nl", "register": "je"})
    [apology] = apologies(run(RemoteAction("action_order_status", REFUSED), tracker, nlg, domain))
    assert " je " in apology.text and " u " not in apology.text


def test_the_page_language_decides_when_the_message_does_not(domain, nlg):
    tracker = tracker_after(domain, "ok", metadata={"locale": "en-GB"})
    events = run(RemoteAction("action_order_status", REFUSED), tracker, nlg, domain)
    assert slots_of(events)["language"] == "en"
    assert "something is going wrong" in apologies(events)[0].text


def test_after_the_apology_only_a_pause(domain, nlg):
    tracker = tracker_after(domain, MESSAGES["nl"], slots={"language": "nl", "service_trouble": True}, paused=True)
    assert run(RemoteAction("action_order_status", REFUSED), tracker, nlg, domain) == [ConversationPaused()]


def test_a_new_outage_after_a_person_resumed_the_conversation_is_a_new_apology(domain, nlg):
    """An agent resolved the case (the bot resumed) without a hand-back that clears the slot."""
    tracker = tracker_after(domain, MESSAGES["nl"], slots={"language": "nl", "service_trouble": True})
    assert len(apologies(run(RemoteAction("action_order_status", REFUSED), tracker, nlg, domain))) == 1


class SlowActionServer:
    """Answers every call after ``delay`` seconds; counts the calls."""

    def __init__(self, delay: float, status: int = 200, body: bytes = b'{"events": [], "responses": []}') -> None:
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                server.calls += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.endpoint = EndpointConfig(f"http://127.0.0.1:{self.http.server_address[1]}/webhook")
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def test_a_slow_server_is_given_up_after_the_time_limit_and_not_waited_for_again(domain, nlg, monkeypatch):
    monkeypatch.setattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT", 0.5)
    slow = SlowActionServer(delay=3)
    try:
        started = time.monotonic()
        events = run(order_status(slow.endpoint), tracker_after(domain, MESSAGES["en"]), nlg, domain)
        took = time.monotonic() - started
        assert len(apologies(events)) == 1 and isinstance(events[-1], ConversationPaused)
        assert took < 2.5, f"waited {took:.1f}s for a 0.5 s limit"
        # The same customer's next call (the turn's next action): no second wait, the server is not even called.
        again = run(order_status(slow.endpoint), tracker_after(domain, MESSAGES["en"]), nlg, domain)
        assert len(apologies(again)) == 1 and slow.calls == 1
        assert not RemoteAction.run.breaker.is_open(), "one slow call must not fail every customer"
    finally:
        slow.close()


def test_after_repeated_timeouts_no_customer_waits(domain, nlg, monkeypatch):
    monkeypatch.setattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT", 0.3)
    slow = SlowActionServer(delay=3)
    try:
        for customer in ("c1", "c2", "c3"):  # ACTION_BREAKER_FAILURES (3) timeouts in a row
            run(order_status(slow.endpoint), tracker_after(domain, MESSAGES["nl"], sender=customer), nlg, domain)
        assert slow.calls == 3 and RemoteAction.run.breaker.is_open()
        started = time.monotonic()
        events = run(order_status(slow.endpoint), tracker_after(domain, MESSAGES["en"], sender="c4"), nlg, domain)
        assert time.monotonic() - started < 0.3 and slow.calls == 3, "another customer waited"
        assert len(apologies(events)) == 1
    finally:
        slow.close()


def clock_at(start):
    now = [start]
    return now, lambda: now[0]


def test_the_breaker_opens_on_repeated_failures_not_on_one():
    now, clock = clock_at(100.0)
    breaker = action_server_down.Breaker(retry_seconds=10, failures_to_open=3, clock=clock)
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open()
    breaker.failed()
    assert breaker.is_open()


def test_a_success_resets_the_count():
    now, clock = clock_at(100.0)
    breaker = action_server_down.Breaker(retry_seconds=10, failures_to_open=3, clock=clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open()


def test_the_breaker_closes_again(domain, nlg):
    now, clock = clock_at(100.0)
    breaker = action_server_down.Breaker(retry_seconds=10, clock=clock)
    for _ in range(breaker.failures_to_open):
        breaker.failed()
    assert breaker.is_open()
    now[0] = 111.0
    assert not breaker.is_open()
    breaker.failed()  # the call tried after the pause fails too: open again at once
    assert breaker.is_open()
    now[0] = 122.0
    breaker.succeeded()
    breaker.failed()
    assert not breaker.is_open()


def test_a_conversation_that_timed_out_is_remembered_for_a_while():
    now, clock = clock_at(100.0)
    recent = action_server_down.RecentTimeouts(retry_seconds=10, clock=clock)
    recent.add("c1")
    assert "c1" in recent and "c2" not in recent
    now[0] = 111.0
    assert "c1" not in recent


def test_the_number_of_failures_that_opens_the_breaker_is_a_setting(monkeypatch):
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)  # what install() replaces, restored after the test
    monkeypatch.setattr(ActionExtractSlots, "run", ActionExtractSlots.run)
    monkeypatch.setattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT", rasa_action.DEFAULT_REQUEST_TIMEOUT)
    monkeypatch.setenv("ACTION_BREAKER_FAILURES", "5")
    monkeypatch.setenv("ACTION_RETRY_SECONDS", "30")
    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", "4")
    action_server_down.install()
    breaker = RemoteAction.run.breaker
    assert (breaker.failures_to_open, breaker.retry_seconds, rasa_action.DEFAULT_REQUEST_TIMEOUT) == (5, 30, 4)


def test_a_refused_connection_opens_no_breaker(domain, nlg):
    for customer in ("c1", "c2", "c3", "c1"):
        run(order_status(REFUSED), tracker_after(domain, MESSAGES["nl"], sender=customer), nlg, domain)
    assert not RemoteAction.run.breaker.is_open(), "the assistant must be back as soon as its action server is"
    assert "c1" not in RemoteAction.run.recent_timeouts


def test_a_server_error_is_a_failure_too(domain, nlg):
    broken = SlowActionServer(delay=0, status=500, body=b'{"error": "boom"}')
    try:
        events = run(order_status(broken.endpoint), tracker_after(domain, MESSAGES["nl"]), nlg, domain)
        assert len(apologies(events)) == 1
    finally:
        broken.close()


def test_a_rejection_is_not_a_failure(domain, nlg):
    """HTTP 400 is a form's "not my slot": Rasa's own handling, no apology."""
    rejecting = SlowActionServer(delay=0, status=400, body=b'{"action_name": "validate_x", "error": "no"}')
    try:
        with pytest.raises(ActionExecutionRejection):
            run(RemoteAction("validate_x", rejecting.endpoint), tracker_after(domain, MESSAGES["nl"]), nlg, domain)
    finally:
        rejecting.close()


def test_a_failed_session_start_still_starts_the_session_without_apologising(domain, nlg):
    tracker = DialogueStateTracker.from_events("c2", [], domain.slots)
    events = run(RemoteAction("action_session_start", REFUSED), tracker, nlg, domain)
    assert isinstance(events[0], SessionStarted) and events[-1] == ActionExecuted("action_listen")
    assert not apologies(events), "the message's language is not known yet"


@pytest.mark.parametrize("language", ["nl", "en"])
def test_failing_inside_action_extract_slots_keeps_the_apology_and_the_pause(domain, language):
    """Rasa keeps only SlotSets of a slot-mapping action; the fallback's events come after it."""
    endpoint_domain = domain
    extract = ActionExtractSlots(REFUSED)
    # A shop token to check: the per-turn observer needs the action server for this turn
    # (without such work the Rasa server observes the turn itself, bot/local_observer.py).
    tracker = tracker_after(domain, MESSAGES[language], metadata={"shop_token": "a token to check"})
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    events = asyncio.run(extract.run(CollectingOutputChannel(), nlg, tracker, endpoint_domain))
    [apology] = apologies(events)
    assert apology.metadata["event"] == "service_trouble"
    assert slots_of(events)["handoff_pending"] == "backend_failure"
    assert slots_of(events)["language"] == language
    assert isinstance(events[-1], ConversationPaused)
