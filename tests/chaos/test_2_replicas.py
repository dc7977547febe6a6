"""Two Rasa servers and two handoff service instances on one Redis.

A REST conversation alternates between the Rasa servers message by message; agents signed in on
either handoff instance see the same queue and the same case; an agent whose instance talks to
the other Rasa server reaches a web customer whose socket is on the first.
"""

import subprocess

import pytest
import requests

from scripts.clients import WebCustomer, wait_until
from scripts.stack import ROOT, _wait_http, free_port
from tests.chaos.conftest import assert_language, handoff_python, answered


@pytest.fixture(scope="module")
def replicas(stack):
    """(rasa2_url, handoff2_url): a second Rasa server and a second handoff instance (talking to rasa2)."""
    rasa2_port, handoff2_port = free_port(), free_port()
    rasa2_url, handoff2_url = f"http://127.0.0.1:{rasa2_port}", f"http://127.0.0.1:{handoff2_port}"
    try:
        stack.start_rasa(port=rasa2_port, name="rasa2")
        env = dict(stack.handoff_env(), HANDOFF_PORT=str(handoff2_port), HANDOFF_RASA_URL=rasa2_url)
        log = open(stack.log_dir / "handoff2.log", "ab")
        proc = subprocess.Popen([handoff_python(), "-m", "handoff"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        stack.processes["handoff2"] = proc
        _wait_http(f"{handoff2_url}/health", timeout=60, proc=proc)
        yield rasa2_url, handoff2_url
    finally:
        stack.stop_process("handoff2")
        stack.stop_process("rasa2")


def say(url, sender, text, language):
    response = requests.post(f"{url}/webhooks/rest/webhook", timeout=60,
                             json={"sender": sender, "message": text, "metadata": {"locale": language}})
    assert response.status_code == 200, response.text
    return [m.get("text", "") for m in response.json()]


def tracker(stack, url, sender):
    response = requests.get(f"{url}/conversations/{sender}/tracker", headers=stack.auth_headers(), timeout=30)
    response.raise_for_status()
    return response.json()


SCRIPT = {
    "nl": ["waar blijft mijn bestelling", "48213377", "3511 AB", "kan ik ook mijn wachtwoord resetten",
           "ik wil een medewerker spreken"],
    "en": ["where is my order", "60418825", "SW1A 1AA", "i forgot my password", "can i talk to a human please"],
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_alternating_rasa_servers_and_handoff_instances(stack, replicas, sign_in, language):
    rasa2_url, handoff2_url = replicas
    servers = [stack.rasa_url, rasa2_url]
    sender = f"chaos-{language}-{free_port()}-{id(servers)}"
    messages = SCRIPT[language]

    for turn, text in enumerate(messages):
        replies = say(servers[turn % 2], sender, text, language)
        assert replies, f"no answer to {text!r} on server {turn % 2 + 1}"
        assert_language(replies, language)
        if turn == 2:
            for url in servers:
                slots = tracker(stack, url, sender)["slots"]
                assert slots["customer_id"] == messages[1], f"{url} does not know the customer"
                assert slots["language"] == language

    one, two = tracker(stack, servers[0], sender), tracker(stack, servers[1], sender)
    assert one["events"] == two["events"], "the two servers see different conversations"
    assert one["slots"] == two["slots"]
    events = one["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == messages, "customer messages out of order"
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps), "the tracker's events are not in order"
    # Every customer message was answered before the next one came in (no interleaving).
    kinds = [e["event"] for e in events if e["event"] in ("user", "bot")]
    assert all(kinds[i + 1] == "bot" for i, k in enumerate(kinds[:-1]) if k == "user"), kinds
    utterances = [(e.get("metadata") or {}).get("utter_action") for e in events if e["event"] == "bot"]
    assert utterances.count("utter_ask_identifier") == 1 and utterances.count("utter_ask_postcode") == 1, \
        "identification was asked again on the other server"
    assert one["paused"] and one["slots"]["handoff_case_id"]

    # Agents on either handoff instance: the same queue, the same case, one owner.
    eva, noah = sign_in("eva"), sign_in("noah", handoff2_url)
    case_id = one["slots"]["handoff_case_id"]
    queues = [[c["id"] for c in answered(a.get, "/api/queue").json()] for a in (eva, noah)]
    assert case_id in queues[0] and queues[0] == queues[1]

    def comparable(agent):
        case = answered(agent.get, f"/api/cases/{case_id}").json()
        case.pop("waiting_seconds", None)
        return case

    wait_until(lambda: [line["text"] for line in comparable(eva)["transcript"] if line["from"] == "customer"] == messages)
    assert comparable(eva) == comparable(noah)
    assert answered(noah.post, f"/api/cases/{case_id}/claim").status_code == 200
    seen_by_eva = comparable(eva)
    assert seen_by_eva["status"] == "human" and seen_by_eva["owner"] == "noah"
    assert answered(eva.post, f"/api/cases/{case_id}/claim").status_code == 409
    assert answered(eva.post, f"/api/cases/{case_id}/notes", {"text": "via instance 1"}).status_code == 200
    assert [n["text"] for n in comparable(noah)["notes"]] == ["via instance 1"]
    # Noah's instance talks to the second Rasa server; hand back and the bot answers on the first.
    assert answered(noah.post, f"/api/cases/{case_id}/handback").status_code == 200
    assert not tracker(stack, servers[0], sender)["paused"]
    assert say(servers[0], sender, "bedankt" if language == "nl" else "thanks", language)


AGENT_LINE = {"nl": "Hallo, ik ben Noah en ik kijk met u mee.", "en": "Hi, I'm Noah and I'm looking into it."}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_an_agent_on_the_other_replica_reaches_a_web_customer(stack, replicas, sign_in, language):
    """The customer's socket is on the first Rasa server; the agent's instance talks to the second.

    The agent's line, the "who joined" notice and the hand-back are sent by the second server to
    the socket.io room of the session, which only the first server holds: they reach the customer
    because the replicas share the rooms over Redis (bot/channels/shared_rooms.py).
    """
    _, handoff2_url = replicas
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        replies = customer.say("ik wil een medewerker spreken" if language == "nl" else "can i talk to a human please")
        assert_language(replies, language)
        noah = sign_in("noah", handoff2_url)

        def case():
            return next((c for c in answered(noah.get, "/api/queue").json()
                         if c["conversation_id"] == customer.sender), None)
        case_id = wait_until(case, timeout=20)["id"]
        before = len(customer.received)
        assert answered(noah.post, f"/api/cases/{case_id}/claim").status_code == 200
        assert answered(noah.post, f"/api/cases/{case_id}/messages", {"text": AGENT_LINE[language]}).status_code == 200
        wait_until(lambda: AGENT_LINE[language] in customer.texts()[before:], timeout=10)
        arrived = customer.received[before:]
        joined = [m for m in arrived if (m.get("metadata") or {}).get("event") == "agent_joined"]
        assert joined and "Noah" in joined[0]["text"], arrived
        line = next(m for m in arrived if m.get("text") == AGENT_LINE[language])
        assert line["metadata"]["agent_name"] == "Noah Bakker"
        assert customer.texts().count(AGENT_LINE[language]) == 1, "delivered twice"
        before = len(customer.received)
        assert answered(noah.post, f"/api/cases/{case_id}/handback").status_code == 200
        wait_until(lambda: len(customer.received) > before, timeout=10)
        assert_language(customer.texts()[before:], language)
    finally:
        customer.close()
