"""Redis restarted under a live handoff: nothing is lost and the conversation continues.

The Redis of this suite writes an AOF with ``appendfsync everysec``; it is killed (SIGKILL, after
more than a second so the AOF has been written) and started again on the same port and directory,
once while the case is queued and once while an agent owns it.
"""

import pytest
import requests

from scripts.clients import WebCustomer, wait_until
from tests.chaos.conftest import assert_language, answered, wait_healthy


def snapshot(agent, case_id):
    """What must survive: state, owner, notes, promise and transcript (via the handoff API)."""
    response = answered(agent.get, f"/api/cases/{case_id}")
    assert response.status_code == 200, response.text
    case = response.json()
    return {
        "status": case["status"], "owner": case["owner"], "owner_name": case.get("owner_name"),
        "notes": [(n["agent"], n["text"]) for n in case["notes"]],
        "promise": case["promise"],
        "transcript": [(line["from"], line["text"]) for line in case["transcript"]],
        "packet": case["packet"],
    }


SCRIPT = {
    "nl": {"identify": ("waar blijft mijn bestelling", "48213377", "3511 AB"),
           "complaint": "ik wil een klacht indienen, niemand helpt me en ik ben het zat", "promise": "uiterlijk",
           "anyone": "hallo? is daar iemand?", "agent": "Goedemiddag, u spreekt met Eva.",
           "waiting": "dank u, ik wacht even", "next": "kan ik ook mijn wachtwoord resetten", "customer_id": "48213377"},
    "en": {"identify": ("where is my order", "60418825", "SW1A 1AA"),
           "complaint": "i want to file a complaint, nobody helps me and i am fed up with it", "promise": "at the latest",
           "anyone": "hello? is anyone there?", "agent": "Good afternoon, this is Eva speaking.",
           "waiting": "thank you, i will wait", "next": "i forgot my password", "customer_id": "60418825"},
}


def nobody_available(chaos_redis) -> bool:
    """No agent present (an earlier test's console may have just closed)."""
    import redis as redis_py
    client = redis_py.Redis.from_url(chaos_redis.url)
    try:
        return not client.keys("handoff:presence:*")
    finally:
        client.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_redis_restart_while_queued_and_while_owned(stack, chaos_redis, sign_in, language):
    say = SCRIPT[language]
    wait_until(lambda: nobody_available(chaos_redis), timeout=70, interval=0.5)
    customer = WebCustomer(stack.rasa_url, {"locale": language})
    try:
        # Nobody is signed in yet: the case queues with a promise (reply-by time).
        for text in say["identify"]:
            customer.say(text)
        replies = customer.say(say["complaint"])
        assert_language(replies, language)
        assert any(say["promise"] in r for r in replies), replies
        eva = sign_in("eva")
        case = next(c for c in eva.get("/api/cases").json() if c["conversation_id"] == customer.sender)
        case_id = case["id"]
        assert answered(eva.post, f"/api/cases/{case_id}/notes", {"text": "klant belde gisteren al"}).status_code == 200
        wait_until(lambda: len(snapshot(eva, case_id)["transcript"]) >= 8)
        before = snapshot(eva, case_id)
        assert before["status"] == "queued" and before["owner"] is None
        assert before["promise"] and before["promise"]["due_at"], before["promise"]
        assert before["notes"] == [("eva", "klant belde gisteren al")]

        # 1. Redis restarted while the case is queued.
        chaos_redis.restart()
        wait_healthy(stack.handoff_url)
        assert snapshot(eva, case_id) == before
        assert any(c["id"] == case_id for c in answered(eva.get, "/api/queue").json()), "the case left the queue"

        # The conversation continues: the customer's next message reaches the console (live and stored).
        eva.open_console_socket()
        # The first message after the promise gets one acknowledgement with the wait (actions/waiting.py).
        assert len(customer.say(say["anyone"])) == 1
        wait_until(lambda: any(line["text"] == say["anyone"] for line in eva.pushed_lines(customer.sender)))
        wait_until(lambda: ("customer", say["anyone"]) in snapshot(eva, case_id)["transcript"])

        # 2. Redis restarted while Eva owns the case.
        assert answered(eva.post, f"/api/cases/{case_id}/claim").status_code == 200
        assert answered(eva.post, f"/api/cases/{case_id}/notes", {"text": "terugbetaling aangeboden"}).status_code == 200
        assert answered(eva.post, f"/api/cases/{case_id}/messages", {"text": say["agent"]}).status_code == 200
        wait_until(lambda: say["agent"] in customer.texts())
        wait_until(lambda: ("agent", say["agent"]) in snapshot(eva, case_id)["transcript"])
        owned = snapshot(eva, case_id)
        assert owned["status"] == "human" and owned["owner"] == "eva"
        # Eva's reply kept the promise: same promise, now with the time it was kept.
        assert dict(owned["promise"], kept_at=None) == before["promise"] and owned["promise"]["kept_at"]

        chaos_redis.restart()
        wait_healthy(stack.handoff_url)
        assert snapshot(eva, case_id) == owned
        noah = sign_in("noah")
        assert answered(noah.post, f"/api/cases/{case_id}/claim").status_code == 409, "the claim was lost"

        # The customer's next message reaches the console; the bot stays silent while Eva owns it.
        assert customer.say(say["waiting"], expect_reply=False) == []
        wait_until(lambda: any(line["text"] == say["waiting"] for line in eva.pushed_lines(customer.sender)))
        wait_until(lambda: ("customer", say["waiting"]) in snapshot(eva, case_id)["transcript"])

        # Hand back: the bot answers again, in the customer's language, without asking who they are.
        assert answered(eva.post, f"/api/cases/{case_id}/handback").status_code == 200
        wait_until(lambda: customer.texts()[-1] != say["agent"])
        replies = customer.say(say["next"])
        assert replies, "the bot did not answer after hand-back"
        assert_language(replies, language)
        tracker = rasa_tracker(stack, customer.sender)
        asked = [e for e in tracker["events"] if e["event"] == "bot"
                 and (e.get("metadata") or {}).get("utter_action") in ("utter_ask_identifier", "utter_ask_postcode")]
        assert len(asked) == 2, "identification was asked again after the restarts"
        assert tracker["slots"]["customer_id"] == say["customer_id"]
    finally:
        customer.close()


def rasa_tracker(stack, sender):
    response = requests.get(f"{stack.rasa_url}/conversations/{sender}/tracker", headers=stack.auth_headers(), timeout=10)
    response.raise_for_status()
    return response.json()
