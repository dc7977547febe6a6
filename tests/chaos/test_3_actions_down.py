"""The action server down or slow: the customer must get one apology and the offer of a person, in
their language, without a hang or a loop (service rules 5 and 6)."""

import http.server
import threading
import time
import urllib.request
import uuid

import pytest
import requests

from scripts.clients import wait_until
from tests.chaos.conftest import assert_language, answered

# What the customer should get when the action server cannot be reached (bot/action_server_down.py).
# Rasa 3.6 alone logs "Encountered an exception while running action ..." and drops the action's
# events, so the customer gets no answer at all; a slow action server is waited for 300 s per call.
APOLOGY = {"nl": ("sorry", "excuses", "spijt"), "en": ("sorry", "apolog")}
PERSON = {"nl": ("medewerker",), "en": ("person", "agent", "colleague", "human")}
CONVERSATION = {"nl": ["waar blijft mijn bestelling", "hallo?"], "en": ["where is my order", "hello?"]}
NO_HANG_SECONDS = 15


@pytest.fixture
def actions_down(stack):
    stack.stop_process("actions")
    try:
        yield
    finally:
        stack.start_actions()


SLOW_SECONDS = 30  # each action-server response is delayed this long (Rasa itself waits up to 300 s)


class _DelayingProxy(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(SLOW_SECONDS)
        request = urllib.request.Request(self.target + self.path, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except Exception:  # noqa: BLE001 - the test is over; Rasa gets an error
            status, payload = 502, b"{}"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def actions_slow(stack):
    """The action server answers, but only after SLOW_SECONDS: a proxy on the port Rasa calls."""
    from scripts.stack import free_port
    rasa_facing = stack.actions_port
    stack.stop_process("actions")
    stack.actions_port = free_port()
    stack.start_actions()
    handler = type("Proxy", (_DelayingProxy,), {"target": stack.actions_url})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", rasa_facing), handler)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        proxy.shutdown()
        proxy.server_close()
        stack.stop_process("actions")
        stack.actions_port = rasa_facing
        stack.start_actions()
        # After a timeout Rasa fails the conversation's custom actions (after three in a row, every
        # conversation's) at once for ACTION_RETRY_SECONDS (10):
        # the next tests need a working assistant again.
        time.sleep(10)


def say(stack, sender, text, language):
    started = time.monotonic()
    try:
        response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=NO_HANG_SECONDS,
                                 json={"sender": sender, "message": text, "metadata": {"locale": language}})
    except requests.Timeout as timeout:
        print(f"{language} {text!r} -> no answer within {NO_HANG_SECONDS}s")
        raise AssertionError(f"{text!r}: no answer within {NO_HANG_SECONDS}s (a hang)") from timeout
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    return [m.get("text", "") for m in response.json()], elapsed


def is_apology(reply, language):
    text = reply.lower()
    return any(w in text for w in APOLOGY[language]) and any(w in text for w in PERSON[language])


@pytest.mark.parametrize("language", ["nl", "en"])
def test_action_server_down_means_one_apology_and_a_person(stack, actions_down, sign_in, language):
    sender = one_apology_and_a_person(stack, language)
    the_promised_person_has_the_case(sign_in, sender, language)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_action_server_slow_means_one_apology_and_a_person(stack, actions_slow, sign_in, language):
    sender = one_apology_and_a_person(stack, language)
    the_promised_person_has_the_case(sign_in, sender, language)


def one_apology_and_a_person(stack, language):
    sender = f"chaos-actions-{uuid.uuid4().hex}"
    turns = []
    for text in CONVERSATION[language]:
        replies, elapsed = say(stack, sender, text, language)
        print(f"{language} {text!r} -> {replies!r} in {elapsed:.1f}s")
        turns.append(replies)
        assert elapsed < NO_HANG_SECONDS, f"{text!r} took {elapsed:.0f}s: a hang"
        assert len(replies) <= 3, f"a loop: {replies}"
    first, everything = turns[0], [r for t in turns for r in t]
    assert first, "the customer got no answer at all"
    assert_language(first, language)
    assert sum(is_apology(r, language) for r in first) == 1, f"no apology offering a person: {first}"
    assert sum(is_apology(r, language) for r in everything) == 1, f"the apology was repeated: {turns}"
    assert len(set(everything)) == len(everything), f"the same line twice (a loop): {turns}"
    return sender


def the_promised_person_has_the_case(sign_in, sender, language):
    """The apology promised a colleague: the case is in the queue, with the transcript."""
    eva = sign_in("eva")

    def case():
        return next((c for c in answered(eva.get, "/api/cases").json() if c["conversation_id"] == sender), None)

    found = wait_until(case, timeout=30, interval=0.5)
    print(f"{language}: case {found['id']} {found['status']} ({found['reason']})")
    assert found["status"] == "queued" and found["reason"] == "backend_failure" and found["language"] == language
    lines = answered(eva.get, f"/api/conversations/{sender}/transcript").json()
    assert any(line["from"] == "customer" and line["text"] == CONVERSATION[language][0] for line in lines), lines
