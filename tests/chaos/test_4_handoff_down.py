"""The handoff service down when a customer asks for a person: an honest message in their language,
and the request is not lost (the case is there once the service is back)."""

import pytest
import requests
import yaml

from scripts.clients import WebCustomer, wait_until
from scripts.stack import ROOT
from tests.chaos.conftest import assert_language, answered, wait_healthy

ASK = {"nl": "ik wil een medewerker spreken", "en": "can i talk to a human please"}


def honest_text(language):
    """utter_handoff_unavailable in ``language`` (domain/handoff.yml)."""
    domain = yaml.safe_load((ROOT / "domain" / "handoff.yml").read_text())
    variants = domain["responses"]["utter_handoff_unavailable"]
    return next(v["text"] for v in variants if v["condition"][0]["value"] == language)


@pytest.fixture
def handoff_down(stack):
    """Stops the handoff service; the test may bring it back with the function it gets."""
    stack.stop_process("handoff")

    def back():
        stack.start_handoff()
        wait_healthy(stack.handoff_url)

    try:
        yield back
    finally:
        if "handoff" not in stack.processes:
            back()


def ask_for_a_person_while_down(stack, language):
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        replies = customer.say(ASK[language])
    finally:
        customer.close()
    return customer.sender, replies


@pytest.mark.parametrize("language", ["nl", "en"])
def test_customer_is_told_honestly(stack, handoff_down, language):
    _, replies = ask_for_a_person_while_down(stack, language)
    assert_language(replies, language)
    assert replies.count(honest_text(language)) == 1, replies
    assert not any(("wachtrij" if language == "nl" else "queue") in r for r in replies), replies


@pytest.mark.parametrize("language", ["nl", "en"])
def test_request_is_not_lost(stack, handoff_down, sign_in, language):
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        replies = customer.say(ASK[language])
        assert replies.count(honest_text(language)) == 1, replies
        before = len(customer.received)
        handoff_down()
        eva = sign_in("eva")

        def case():
            return next((c for c in answered(eva.get, "/api/cases").json()
                         if c["conversation_id"] == customer.sender), None)

        found = wait_until(case, timeout=30, interval=0.5)
        assert found["status"] == "queued" and found["reason"] == "request"
        assert found["language"] == language and found["channel"] == "socketio"
        # The customer hears where they stand, in their language, on the open web chat.
        wait_until(lambda: len(customer.received) > before, timeout=20)
        told = customer.texts()[before:]
        assert_language(told, language)
        wait_words = {"nl": ("wachtrij", "uiterlijk"), "en": ("queue", "by")}[language]
        assert any(w in " ".join(told) for w in wait_words), told
        tracker = requests.get(f"{stack.rasa_url}/conversations/{customer.sender}/tracker",
                               headers=stack.auth_headers(), timeout=30).json()
        assert tracker["paused"] and tracker["slots"]["handoff_case_id"] == found["id"]
        assert tracker["slots"]["handoff_pending"] is None
    finally:
        customer.close()
