"""The Rasa server killed (SIGKILL) in the middle of a turn and started again: the customer
continues where they were, without waiting for the dead server's conversation lock.

A turn holds the conversation's lock in the Redis lock store until it ends; a killed server never
releases it. Rasa lets a lock expire after ``TICKET_LOCK_LIFETIME`` (60 s by default): the next
message would wait that long. A turn is bounded by the action server's time limit
(bot/action_server_down.py, 8 s per call, a conversation's calls fail at once after its timeout), so the stack sets
25 s (scripts/stack.py, docker-compose.yml, deploy/k8s/configmap.yaml).
"""

import os
import signal
import threading
import time
import uuid

import pytest
import requests

from tests.chaos.conftest import assert_language

SCRIPT = {
    "nl": ["waar blijft mijn bestelling", "48213377", "3511 AB", "kan ik ook mijn wachtwoord resetten"],
    "en": ["where is my order", "60418825", "SW1A 1AA", "i forgot my password"],
}
# Rasa's start plus what is left of the dead lock (25 s): 39-47 s measured on this machine under the
# suite's load (the start-up grew this stop; see the closing note). Waiting for Rasa's default lock
# lifetime instead would take 60 s from the dead turn, so the bound still tells the two apart.
CONTINUE_WITHIN_SECONDS = 55


def say(stack, sender, text, language, timeout=60):
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=timeout,
                             json={"sender": sender, "message": text, "metadata": {"locale": language}})
    assert response.status_code == 200, response.text
    return [m.get("text", "") for m in response.json()]


def slots(stack, sender):
    response = requests.get(f"{stack.rasa_url}/conversations/{sender}/tracker", headers=stack.auth_headers(),
                            timeout=30)
    response.raise_for_status()
    return response.json()["slots"]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_rasa_killed_mid_turn_and_started_again(stack, language):
    sender = f"chaos-kill-{uuid.uuid4().hex}"
    first, customer_number, postcode, next_question = SCRIPT[language]
    for text in (first, customer_number, postcode):
        assert_language(say(stack, sender, text, language), language)
    assert slots(stack, sender)["customer_id"] == customer_number

    # The action server frozen: the next turn takes the lock and waits for it (up to 8 s).
    actions = stack.processes["actions"]
    os.killpg(actions.pid, signal.SIGSTOP)
    try:
        in_flight = threading.Thread(target=_swallow, args=(say, stack, sender, next_question, language), daemon=True)
        in_flight.start()
        time.sleep(1.0)
        rasa = stack.processes.pop("rasa")
        os.killpg(rasa.pid, signal.SIGKILL)
        rasa.wait()
        in_flight.join(timeout=10)
    finally:
        os.killpg(actions.pid, signal.SIGCONT)

    started = time.monotonic()
    stack.start_rasa()
    # The customer's message was lost with the turn (no answer came back): they send it again.
    replies = say(stack, sender, next_question, language)
    took = time.monotonic() - started
    print(f"{language}: answered {took:.1f}s after the restart began: {replies}")
    assert replies and took < CONTINUE_WITHIN_SECONDS, f"{took:.0f}s"
    assert_language(replies, language)
    joined = " ".join(replies).lower()
    assert ("klantnummer" if language == "nl" else "customer number") not in joined, "identification asked again"
    assert slots(stack, sender)["customer_id"] == customer_number


def _swallow(call, *args):
    try:
        call(*args)
    except requests.RequestException:
        pass  # the server died under it: what the customer sees as a dropped message
