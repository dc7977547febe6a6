"""One Rasa server served by two processes (Sanic workers, ``RASA_WORKERS=2`` for ``make run``).

The kernel hands each new connection to either process. A REST conversation whose messages land
on both is one conversation (the Redis tracker and lock stores); web customers whose websockets
are held by either process get the bot's answers and an agent's line, which a handoff service
talking to this server sends through either process: the processes share the socket.io rooms
over Redis (bot/channels/shared_rooms.py), each with its own identity on the channel (with one
identity, an agent's line sent through the process that did not hold the socket was dropped).
"""

import subprocess
from pathlib import Path
from typing import List

import pytest
import requests

from scripts.clients import WebCustomer, wait_until
from scripts.stack import ROOT, _wait_http, free_port
from tests.chaos.conftest import answered, assert_language, handoff_python


@pytest.fixture(scope="module")
def workers_url(stack):
    port = free_port()
    try:
        stack.start_rasa(port=port, name="rasa-workers", workers=2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop_process("rasa-workers")


@pytest.fixture(scope="module")
def handoff_to_workers(stack, workers_url):
    """A handoff service instance whose calls to Rasa go to the server with two processes."""
    port = free_port()
    env = dict(stack.handoff_env(), HANDOFF_PORT=str(port), HANDOFF_RASA_URL=workers_url)
    log = open(stack.log_dir / "handoff-workers.log", "ab")
    proc = subprocess.Popen([handoff_python(), "-m", "handoff"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    stack.processes["handoff-workers"] = proc
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop_process("handoff-workers")


def children(pid: int) -> List[int]:
    found: List[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def test_two_processes_serve_the_port(stack, workers_url):
    workers = children(stack.processes["rasa-workers"].pid)
    assert len(workers) == 2, workers
    for pid in workers:
        assert "bot.server" in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


SCRIPT = {
    "nl": ["waar blijft mijn bestelling", "48213377", "3511 AB", "dank je wel"],
    "en": ["where is my order", "60418825", "SW1A 1AA", "thanks"],
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_rest_conversation_over_both_processes_is_one_conversation(stack, workers_url, language):
    sender = f"workers-{language}-{free_port()}"
    for text in SCRIPT[language]:
        # A new connection per message: the kernel may give each to either process.
        response = requests.post(f"{workers_url}/webhooks/rest/webhook", timeout=60,
                                 headers={"Connection": "close"},
                                 json={"sender": sender, "message": text, "metadata": {"locale": language}})
        assert response.status_code == 200, response.text
        replies = [m.get("text", "") for m in response.json()]
        assert replies, f"no answer to {text!r}"
        assert_language(replies, language)
    tracker = requests.get(f"{workers_url}/conversations/{sender}/tracker", headers=stack.auth_headers(),
                           timeout=30).json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == SCRIPT[language]
    utterances = [(e.get("metadata") or {}).get("utter_action") for e in tracker["events"] if e["event"] == "bot"]
    assert utterances.count("utter_ask_identifier") == 1, "identification asked twice"
    assert tracker["slots"]["customer_id"] == SCRIPT[language][1]


AGENT_LINE = {"nl": "Hallo, ik ben Eva en ik help u verder.", "en": "Hi, I'm Eva and I'll help you further."}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_web_customers_on_either_process_get_the_bot_and_the_agent(stack, workers_url, handoff_to_workers,
                                                                     sign_in, language):
    eva = sign_in("eva", handoff_to_workers)
    # Six sockets and six agent lines, each on either process: the chance that no line has to
    # cross from one process to the other is 1 in 64.
    customers = [WebCustomer(workers_url, {"locale": language}, transport="websocket") for _ in range(6)]
    try:
        for customer in customers:
            replies = customer.say("ik wil een medewerker spreken" if language == "nl"
                                   else "can i talk to a human please")
            assert_language(replies, language)
        for customer in customers:
            def case(sender=customer.sender):
                return next((c for c in answered(eva.get, "/api/queue").json()
                             if c["conversation_id"] == sender), None)
            case_id = wait_until(case, timeout=20)["id"]
            before = len(customer.received)
            assert answered(eva.post, f"/api/cases/{case_id}/claim").status_code == 200
            assert answered(eva.post, f"/api/cases/{case_id}/messages",
                            {"text": AGENT_LINE[language]}).status_code == 200
            wait_until(lambda c=customer, b=before: AGENT_LINE[language] in c.texts()[b:], timeout=10)
            assert customer.texts().count(AGENT_LINE[language]) == 1, "delivered twice"
            assert answered(eva.post, f"/api/cases/{case_id}/resolve", {"outcome": "solved"}).status_code == 200
    finally:
        for customer in customers:
            customer.close()
