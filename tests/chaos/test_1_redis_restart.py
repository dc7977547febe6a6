"""Redis restarted under a live handoff: nothing is lost and the conversation continues.

The Redis of this suite writes an AOF with ``appendfsync everysec``; it is killed (SIGKILL, after
more than a second so the AOF has been written) and started again on the same port and directory,
once while the case is queued and once while an agent owns it.
"""

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


def test_redis_restart_while_queued_and_while_owned(stack, chaos_redis, sign_in):
    customer = WebCustomer(stack.rasa_url, {"locale": "nl"})
    try:
        # Nobody is signed in yet: the case queues with a promise (reply-by time).
        for text in ("waar blijft mijn bestelling", "48213377", "3511 AB"):
            customer.say(text)
        replies = customer.say("ik wil een klacht indienen, niemand helpt me en ik ben het zat")
        assert_language(replies, "nl")
        assert any("uiterlijk" in r for r in replies), replies
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
        assert customer.say("hallo? is daar iemand?", expect_reply=False) == []
        wait_until(lambda: any(l["text"] == "hallo? is daar iemand?" for l in eva.pushed_lines(customer.sender)))
        wait_until(lambda: ("customer", "hallo? is daar iemand?") in snapshot(eva, case_id)["transcript"])

        # 2. Redis restarted while Eva owns the case.
        assert answered(eva.post, f"/api/cases/{case_id}/claim").status_code == 200
        assert answered(eva.post, f"/api/cases/{case_id}/notes", {"text": "terugbetaling aangeboden"}).status_code == 200
        assert answered(eva.post, f"/api/cases/{case_id}/messages", {"text": "Goedemiddag, u spreekt met Eva."}).status_code == 200
        wait_until(lambda: "Goedemiddag, u spreekt met Eva." in customer.texts())
        wait_until(lambda: ("agent", "Goedemiddag, u spreekt met Eva.") in snapshot(eva, case_id)["transcript"])
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
        assert customer.say("dank u, ik wacht even", expect_reply=False) == []
        wait_until(lambda: any(l["text"] == "dank u, ik wacht even" for l in eva.pushed_lines(customer.sender)))
        wait_until(lambda: ("customer", "dank u, ik wacht even") in snapshot(eva, case_id)["transcript"])

        # Hand back: the bot answers again, in Dutch, without asking who the customer is.
        assert answered(eva.post, f"/api/cases/{case_id}/handback").status_code == 200
        wait_until(lambda: customer.texts()[-1] != "Goedemiddag, u spreekt met Eva.")
        replies = customer.say("kan ik ook mijn wachtwoord resetten")
        assert replies, "the bot did not answer after hand-back"
        assert_language(replies, "nl")
        tracker = rasa_tracker(stack, customer.sender)
        asked = [e for e in tracker["events"] if e["event"] == "bot"
                 and (e.get("metadata") or {}).get("utter_action") in ("utter_ask_identifier", "utter_ask_postcode")]
        assert len(asked) == 2, "identification was asked again after the restarts"
        assert tracker["slots"]["customer_id"] == "48213377"
    finally:
        customer.close()


def rasa_tracker(stack, sender):
    response = requests.get(f"{stack.rasa_url}/conversations/{sender}/tracker", headers=stack.auth_headers(), timeout=10)
    response.raise_for_status()
    return response.json()
