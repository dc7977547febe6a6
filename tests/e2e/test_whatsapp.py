"""WhatsApp end to end: the real stack (Rasa with the trained model, actions, handoff service,
Redis) with its WhatsApp channel pointed at a fake Graph API; the customer's messages arrive
as signed webhook deliveries, exactly as Meta sends them.

Sanne de Vries (wa_id 31612345678 in the demo data) reports a broken hair dryer in Dutch, asks
for a person, and an agent's reply reaches her on WhatsApp.
"""

import json
import time
import uuid
from typing import Any, Dict

import pytest
import requests

from scripts.clients import Agent, wait_until
from scripts.fake_graph_api import FakeGraphAPI, replies_after
from scripts.model import ensure_model
from scripts.stack import Stack, free_port
from scripts.whatsapp_customer import PHONE_NUMBER_ID, WhatsAppCustomer, delivery, message, sign
from tests.e2e.conftest import assert_language, started

SANNE = "31612345678"
APP_SECRET = uuid.uuid4().hex
VERIFY_TOKEN = uuid.uuid4().hex
ACCESS_TOKEN = "EAAG" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def graph():
    fake = FakeGraphAPI(access_token=ACCESS_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def whatsapp_stack(redis_url, graph, tmp_path_factory):
    """A stack of its own whose WhatsApp channel talks to the fake Graph API.

    It uses database 1 of the test Redis, so its handoff service does not share the event
    stream's consumer group (or cases and agents) with the session's other stack.
    """
    log_dir = tmp_path_factory.mktemp("whatsapp-logs")
    database = tmp_path_factory.mktemp("whatsapp-db") / "helder.db"
    stack = Stack(
        redis_url=redis_url.rsplit("/", 1)[0] + "/1",
        rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
        model=ensure_model(), jwt_secret=uuid.uuid4().hex, log_dir=log_dir,
        extra_env={
            "KLANTCONTACT_DB_URL": f"sqlite:///{database}",
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_GRAPH_API_URL": graph.url,
        },
    )
    with started(stack):
        yield stack


def visible_text(message: Dict[str, Any]) -> str:
    """What the customer reads in a text or interactive message."""
    if message["type"] == "text":
        return message["text"]["body"]
    if message["type"] == "interactive":
        return message["interactive"]["body"]["text"]
    return ""


def tracker(stack: Stack, conversation_id: str) -> Dict[str, Any]:
    response = requests.get(f"{stack.rasa_url}/conversations/{conversation_id}/tracker",
                            headers=stack.auth_headers(), timeout=30)
    response.raise_for_status()
    return response.json()


def test_webhook_verification_on_the_running_server(whatsapp_stack):
    url = f"{whatsapp_stack.rasa_url}/webhooks/whatsapp/webhook"
    ok = requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                   "hub.challenge": "8364"}, timeout=10)
    assert (ok.status_code, ok.text) == (200, "8364")
    assert requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                     "hub.challenge": "8364"}, timeout=10).status_code == 403


def test_a_dutch_whatsapp_conversation_with_a_handoff_and_an_agent_reply(whatsapp_stack, graph):
    stack = whatsapp_stack
    sanne = WhatsAppCustomer(stack.rasa_url, APP_SECRET, SANNE, name="Sanne de Vries")

    # An agent has the console open, so the case queues for her.
    password = uuid.uuid4().hex
    stack.add_agent("eva", "Eva de Jong", password)
    eva = Agent(stack.handoff_url, "eva", password)
    eva.open_console_socket()
    try:
        # The problem, in her own words: the bot answers on WhatsApp, in Dutch.
        first = sanne.say("hoi, mijn föhn is kapot")
        replies = replies_after(graph, SANNE, 0)
        assert all(m["to"] == SANNE for m in replies)
        assert_language([visible_text(m) for m in replies if visible_text(m)], "nl")
        user_events = [e for e in tracker(stack, SANNE)["events"] if e["event"] == "user"]
        assert user_events[-1]["input_channel"] == "whatsapp"
        assert user_events[-1]["metadata"]["phone"] == "+31612345678"
        assert user_events[-1]["metadata"]["profile_name"] == "Sanne de Vries"

        # Meta delivers the same message again: no second answer, no second turn.
        sent_so_far = len(graph.messages(SANNE))
        assert sanne.post(first).status_code == 200
        time.sleep(3)
        assert len(graph.messages(SANNE)) == sent_so_far, "a redelivery was answered again"
        user_events = [e for e in tracker(stack, SANNE)["events"] if e["event"] == "user"]
        assert len(user_events) == 1

        # A person, in one step.
        sanne.say("ik wil een medewerker")
        replies = replies_after(graph, SANNE, sent_so_far)
        assert_language([visible_text(m) for m in replies if visible_text(m)], "nl")
        state = tracker(stack, SANNE)
        assert state["paused"] and state["slots"]["handoff_case_id"]

        # Eva claims the case and replies: the reply reaches Sanne's WhatsApp as a text message.
        case = wait_until(lambda: next((c for c in eva.get("/api/queue").json()
                                        if c["conversation_id"] == SANNE), None))
        assert eva.post(f"/api/cases/{case['id']}/claim").status_code == 200
        detail = eva.get(f"/api/cases/{case['id']}").json()
        assert detail["packet"]["channel"] == "whatsapp"
        assert detail["packet"]["problem_description"] == "hoi, mijn föhn is kapot"
        # The console shows how long the 24-hour window stays open (she just wrote).
        assert 23 * 3600 < detail["whatsapp_window_seconds_left"] <= 24 * 3600

        reply = "Goedemiddag, u spreekt met Eva. Ik stuur u vandaag nog een nieuwe föhn."
        response = eva.post(f"/api/cases/{case['id']}/messages", {"text": reply})
        assert response.status_code == 200, response.text
        delivered = graph.wait_for(lambda: [m for m in graph.messages(SANNE)
                                            if m["type"] == "text" and m["text"]["body"] == reply])
        assert delivered[0]["to"] == SANNE and delivered[0]["messaging_product"] == "whatsapp"
        assert all(r.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}" for r in graph.requests)
    finally:
        eva.close()


def photo_from(wa_id: str) -> Dict[str, Any]:
    return delivery([message(wa_id, "image", image={"id": "1479537139650973", "mime_type": "image/jpeg"})],
                    contacts=[{"profile": {"name": "Piet"}, "wa_id": wa_id}], phone_number_id=PHONE_NUMBER_ID)


def test_a_photo_gets_a_polite_dutch_request_to_type(whatsapp_stack, graph):
    wa_id = "31687654321"
    customer = WhatsAppCustomer(whatsapp_stack.rasa_url, APP_SECRET, wa_id, name="Piet")
    assert customer.post(photo_from(wa_id)).status_code == 200
    [reply] = replies_after(graph, wa_id, 0)
    assert reply["type"] == "text" and "foto" in reply["text"]["body"]
    assert_language([reply["text"]["body"]], "nl")
    bots = [e for e in tracker(whatsapp_stack, wa_id)["events"] if e["event"] == "bot"]
    assert bots[-1]["metadata"]["utter_action"] == "utter_unsupported_media"


def test_a_photo_instead_of_a_customer_number_is_not_a_failed_attempt(whatsapp_stack, graph):
    wa_id = "31687650000"  # not a known customer: the bot has to ask who they are
    customer = WhatsAppCustomer(whatsapp_stack.rasa_url, APP_SECRET, wa_id, name="Piet")
    customer.say("waar blijft mijn bestelling")
    asked = replies_after(graph, wa_id, 0)
    customer.post(photo_from(wa_id))  # e.g. a photo of the order confirmation
    replies = replies_after(graph, wa_id, len(asked))
    assert "foto" in visible_text(replies[0])
    state = tracker(whatsapp_stack, wa_id)
    actions = [(e.get("metadata") or {}).get("utter_action") for e in state["events"] if e["event"] == "bot"]
    assert actions[-2:] == ["utter_unsupported_media", "utter_ask_identifier_again"], actions
    assert state["active_loop"]["name"] == "identification_form"
    assert not state["slots"]["identification_attempts"], "the photo counted as a wrong answer"


def test_bad_input_on_whatsapp_gets_a_4xx_or_an_answer_and_the_conversation_goes_on(whatsapp_stack, graph):
    wa_id = "31687652222"  # not a known customer
    customer = WhatsAppCustomer(whatsapp_stack.rasa_url, APP_SECRET, wa_id, name="Piet")
    # Broken UTF-8 in a correctly signed delivery: a clear 400, nothing answered.
    body = json.dumps(customer.payload("hallo")).encode().replace(b"hallo", b"hal\xff\xfelo \xc3\x28")
    refused = requests.post(customer.webhook, data=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET, body)})
    assert refused.status_code == 400 and "JSON" in refused.text
    # 100 kB of text (WhatsApp itself allows 4096 characters): read up to the limit and answered.
    customer.say("mijn internet doet het niet meer sinds gisteren, de modem knippert rood. " * 1400)
    replies = replies_after(graph, wa_id, 0)
    assert replies and all(visible_text(r).strip() for r in replies)
    assert_language([visible_text(r) for r in replies], "nl")
    # Control characters and emoji only: no crash, and a person is still one word away.
    customer.say("\x00\x07👍🏽\x1b\x7f")
    customer.say("medewerker")
    wait_until(lambda: "utter_handoff_request" in bot_actions(whatsapp_stack, wa_id), timeout=60)
    actions = bot_actions(whatsapp_stack, wa_id)
    assert "utter_handoff_unavailable" not in actions, actions
    texts = [e["text"] for e in tracker(whatsapp_stack, wa_id)["events"] if e["event"] == "user"]
    assert len(texts[0]) <= 4096 and "\x00" not in "".join(texts) and "👍🏽" in texts


def bot_actions(stack: Stack, conversation_id: str):
    return [(e.get("metadata") or {}).get("utter_action") for e in tracker(stack, conversation_id)["events"]
            if e["event"] == "bot"]


EMILY = "447700900123"


def test_an_english_whatsapp_conversation_identified_by_phone_with_a_handoff(whatsapp_stack, graph):
    stack = whatsapp_stack
    emily = WhatsAppCustomer(stack.rasa_url, APP_SECRET, EMILY, name="Emily Clarke")
    password = uuid.uuid4().hex
    stack.add_agent("noah", "Noah Bakker", password)
    noah = Agent(stack.handoff_url, "noah", password)
    noah.open_console_socket()
    try:
        emily.say("hi, i forgot my password and i cant log in")
        replies = [visible_text(m) for m in replies_after(graph, EMILY, 0) if visible_text(m)]
        assert_language(replies, "en")
        state = tracker(stack, EMILY)
        # The phone number is the identity: no customer number, no postcode asked.
        assert state["slots"]["identity_verified_by"] == "whatsapp_phone"
        asked = [e["metadata"].get("utter_action") for e in state["events"] if e["event"] == "bot"]
        assert "utter_ask_identifier" not in asked and "utter_password_reset_sent" in asked

        before = len(graph.messages(EMILY))
        emily.say("can i talk to a person please")
        assert_language([visible_text(m) for m in replies_after(graph, EMILY, before) if visible_text(m)], "en")
        case = wait_until(lambda: next((c for c in noah.get("/api/queue").json()
                                        if c["conversation_id"] == EMILY), None))
        assert case["language"] == "en" and case["packet"]["identity"]["verified_by"] == "whatsapp_phone"
        assert noah.post(f"/api/cases/{case['id']}/claim").status_code == 200
        reply = "Hello Emily, this is Noah. The reset link is on its way again."
        assert noah.post(f"/api/cases/{case['id']}/messages", {"text": reply}).status_code == 200
        graph.wait_for(lambda: [m for m in graph.messages(EMILY) if m["type"] == "text" and m["text"]["body"] == reply])
    finally:
        noah.close()
