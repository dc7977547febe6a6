"""Handoff end to end: real Rasa, action server, handoff service and Redis; a web customer on
socket.io and agents on the service's API (the console's JavaScript makes the same calls)."""

import uuid

import pytest

from tests.e2e.conftest import assert_language
from scripts.clients import Agent, WebCustomer, wait_until

SCRIPT = {
    "nl": {
        "problem": "waar blijft mijn bestelling",
        "identifier": "48213377", "postcode": "3511 AB",
        "complaint": "ik wil een klacht indienen, ik ben al drie keer doorverbonden en niemand helpt me",
        "while_paused": "hallo? is daar iemand?",
        "agent_reply": "Goedemiddag, u spreekt met Eva. Ik heb uw klacht voor me en los het nu op.",
        "after_handback": "kan ik ook mijn wachtwoord resetten",
    },
    "en": {
        "problem": "where is my order",
        "identifier": "60418825", "postcode": "SW1A 1AA",
        "complaint": "i want to file a complaint, i have been passed around three times and nobody helps",
        "while_paused": "hello? anyone there?",
        "agent_reply": "Hello, this is Eva. I have your complaint in front of me and I'm sorting it out now.",
        "after_handback": "can you also reset my password",
    },
}


@pytest.mark.parametrize("language, ask, words", [("nl", "ik wil een medewerker spreken", "uiterlijk"),
                                                   ("en", "can i talk to a human please", "by")])
def test_nobody_available_gets_an_honest_promise(stack, language, ask, words):
    # Runs before any agent has the console open (the agents fixture below comes later).
    import requests
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        replies = customer.say(ask)
        assert_language(replies, language)
        assert any(words in r for r in replies), replies
        tracker = requests.get(f"{stack.rasa_url}/conversations/{customer.sender}/tracker",
                               headers=stack.auth_headers(), timeout=10).json()
        assert tracker["paused"] and tracker["slots"]["handoff_case_id"]
    finally:
        customer.close()


@pytest.fixture(scope="module")
def agents(stack):
    passwords = {"eva": uuid.uuid4().hex, "noah": uuid.uuid4().hex}
    stack.add_agent("eva", "Eva de Jong", passwords["eva"])
    stack.add_agent("noah", "Noah Bakker", passwords["noah"])
    eva = Agent(stack.handoff_url, "eva", passwords["eva"])
    noah = Agent(stack.handoff_url, "noah", passwords["noah"])
    eva.open_console_socket()  # Eva is available: cases queue with a position and estimate
    yield eva, noah
    eva.close()
    noah.close()


def bot_lines_while(customer, stack, start_index):
    """Bot utterances in the tracker after ``start_index`` that did not come from an agent."""
    import requests
    tracker = requests.get(f"{stack.rasa_url}/conversations/{customer.sender}/tracker",
                           headers=stack.auth_headers(), timeout=10).json()
    bots = [e for e in tracker["events"] if e["event"] == "bot"]
    return [e for e in bots[start_index:] if not (e.get("metadata") or {}).get("agent_id")], tracker


@pytest.mark.parametrize("language", ["nl", "en"])
def test_escalate_claim_talk_hand_back(stack, agents, language):
    eva, noah = agents
    say = SCRIPT[language]
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        customer.say(say["problem"])
        customer.say(say["identifier"])
        customer.say(say["postcode"])
        replies = customer.say(say["complaint"])
        assert_language(replies, language)
        assert any(("wachtrij" if language == "nl" else "queue") in r for r in replies), replies

        # The case carries the whole packet.
        queue = eva.get("/api/queue").json()
        case = next(c for c in queue if c["conversation_id"] == customer.sender)
        detail = eva.get(f"/api/cases/{case['id']}").json()
        packet = detail["packet"]
        assert packet["identity"]["customer_id"] == say["identifier"]
        assert packet["identity"]["verified_by"] == "customer_number+postcode"
        assert packet["language"] == language and packet["channel"] == "socketio"
        assert packet["problem_description"] == say["problem"]
        assert packet["reason"] == "complexity" and packet["intent"] == "complaint"
        assert packet["bot_attempts"] and packet["transcript"]
        assert detail["transcript"], "the console has the transcript from the event stream"

        # Atomic claim: Eva gets it, Noah cannot take it.
        assert eva.post(f"/api/cases/{case['id']}/claim").status_code == 200
        assert noah.post(f"/api/cases/{case['id']}/claim").status_code == 409
        bots_before = len([e for e in bot_lines_while(customer, stack, 0)[1]["events"] if e["event"] == "bot"])

        # The customer writes while a person owns the conversation: the bot is silent,
        # the console sees it live.
        assert customer.say(say["while_paused"], expect_reply=False) == []
        wait_until(lambda: any(line["text"] == say["while_paused"] for line in eva.pushed_lines(customer.sender)))

        # Eva replies: it reaches the customer's channel; Noah may not reply.
        assert eva.post(f"/api/cases/{case['id']}/messages", {"text": say["agent_reply"]}).status_code == 200
        wait_until(lambda: say["agent_reply"] in customer.texts())
        assert noah.post(f"/api/cases/{case['id']}/messages", {"text": "hi"}).status_code == 403

        silent, tracker = bot_lines_while(customer, stack, bots_before)
        assert silent == [], f"the bot spoke while a person owned the conversation: {silent}"
        agent_events = [e for e in tracker["events"] if e["event"] == "bot" and (e.get("metadata") or {}).get("agent_id")]
        assert agent_events[-1]["metadata"]["agent_name"] == "Eva de Jong"

        # Hand back: the bot continues in the customer's language, knowing who they are.
        assert eva.post(f"/api/cases/{case['id']}/handback").status_code == 200
        wait_until(lambda: len(customer.texts()) > 0 and customer.texts()[-1] != say["agent_reply"])
        assert_language(customer.texts()[-1:], language)
        replies = customer.say(say["after_handback"])
        assert_language(replies, language)
        asked = [e for e in bot_lines_while(customer, stack, 0)[1]["events"]
                 if e["event"] == "bot"
                 and (e.get("metadata") or {}).get("utter_action") in ("utter_ask_identifier", "utter_ask_postcode")]
        assert len(asked) == 2, "identification was asked again after hand-back"
        assert eva.post(f"/api/cases/{case['id']}/messages", {"text": "nog iets"}).status_code == 409
    finally:
        customer.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_take_over_a_conversation_the_bot_is_handling(stack, agents, language):
    eva, _ = agents
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        customer.say("wanneer zijn jullie open" if language == "nl" else "when are you open")
        live = eva.get("/api/conversations").json()
        assert any(c["conversation_id"] == customer.sender and c["owner"] == "bot" for c in live)

        response = eva.post(f"/api/conversations/{customer.sender}/takeover")
        assert response.status_code == 200, response.text
        case = response.json()
        # The notice that Eva joined arrives on the socket on its own time; after it, the bot is silent.
        wait_until(lambda: any("Eva de Jong" in t for t in customer.texts()))
        assert customer.say("en op zondag?" if language == "nl" else "and on sunday?", expect_reply=False) == []
        assert eva.post(f"/api/cases/{case['id']}/messages", {"text": "Op zondag zijn we gesloten." if language == "nl"
                                                               else "We're closed on Sundays."}).status_code == 200
        wait_until(lambda: any("zondag" in t or "Sunday" in t for t in customer.texts()))

        assert eva.post(f"/api/cases/{case['id']}/resolve", {"outcome": "answered"}).status_code == 200
        resolved = eva.get("/api/cases?status=resolved").json()
        assert any(c["id"] == case["id"] and c["outcome"] == "answered" for c in resolved)
        # Resolved: the bot owns the conversation again.
        assert_language(customer.say("bedankt, waar is mijn pakket eigenlijk" if language == "nl"
                                     else "thanks, where is my parcel by the way"), language)
    finally:
        customer.close()
