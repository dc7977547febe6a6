"""Erasure of one customer everywhere, on the real stack: two customers talk to the bot and reach
a person; one is erased with `python -m scripts.erase_customer`; every store (Rasa's tracker store,
the handoff service's cases and transcripts, the SQL backend, the log files) has lost them and
still has the other one.

Uses customers no other end-to-end test uses (the stack is shared by the session)."""

import json
import subprocess
import sys
import uuid

import redis

from contract.keys import tracker_key
from scripts.clients import Agent, wait_until
from tests.e2e.conftest import Customer

DAAN = ("30571846", "3011 AD", "+31620304050")   # erased
SOFIE = ("53820471", "2018", "+32485112233")     # kept


def reach_a_person(stack, who) -> Customer:
    customer = Customer(stack)
    customer.say("mijn bestelling is niet aangekomen")
    customer.say(who[0])
    customer.say(who[1])
    replies = customer.say("ik wil een medewerker spreken")
    assert replies and customer.slots()["handoff_case_id"], replies
    return customer


def test_erase_one_customer_everywhere(stack):
    password = uuid.uuid4().hex
    stack.add_agent("erik", "Erik Admin", password)
    agent = Agent(stack.handoff_url, "erik", password)
    daan, sofie = reach_a_person(stack, DAAN), reach_a_person(stack, SOFIE)
    daan_case, sofie_case = daan.slots()["handoff_case_id"], sofie.slots()["handoff_case_id"]
    # the console has both transcripts from the event stream
    wait_until(lambda: agent.get(f"/api/conversations/{daan.sender}/transcript").json()
               and agent.get(f"/api/conversations/{sofie.sender}/transcript").json())
    store = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    assert store.exists(tracker_key(daan.sender), tracker_key(sofie.sender)) == 2
    # the trackers expire RETENTION_DAYS (30) after the last save
    assert 29 * 86400 < store.ttl(tracker_key(sofie.sender)) <= 30 * 86400

    env = dict(stack.env(), KLANTCONTACT_DB_URL=stack.extra_env["KLANTCONTACT_DB_URL"])
    result = subprocess.run(
        [sys.executable, "-m", "scripts.erase_customer", "--customer", DAAN[0], "--redis-url", stack.redis_url,
         "--logs", str(stack.log_dir)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert daan.sender in report["redis"]["conversations"] and daan_case in report["redis"]["cases"]
    assert report["backend"]["customers"] == 1
    for log in stack.log_dir.glob("*.log"):   # before the requests below log the conversation id again
        found = [line for line in log.read_text(errors="replace").splitlines() if DAAN[0] in line or daan.sender in line]
        assert found == [], log.name

    # Daan is gone from every store
    assert not store.exists(tracker_key(daan.sender))
    assert agent.get(f"/api/cases/{daan_case}").status_code == 404
    assert agent.get(f"/api/conversations/{daan.sender}/transcript").status_code == 404
    assert all(c["conversation_id"] != daan.sender for c in agent.get("/api/conversations").json())
    assert all(case["id"] != daan_case for case in agent.get("/api/queue").json())
    assert not [k for k in store.scan_iter("*") if daan.sender in k]
    for _entry_id, fields in store.xrange("handoff:events"):
        assert fields.get("sender_id") != daan.sender
    from actions.backend.sql import SqlBackend
    backend = SqlBackend(stack.extra_env["KLANTCONTACT_DB_URL"])
    assert backend.get_customer(DAAN[0]) is None and backend.orders(DAAN[0]) == []

    # Sofie is all there
    assert store.exists(tracker_key(sofie.sender))
    assert sofie.slots()["customer_id"] == SOFIE[0]
    assert agent.get(f"/api/cases/{sofie_case}").status_code == 200
    assert agent.get(f"/api/conversations/{sofie.sender}/transcript").json()
    assert backend.get_customer(SOFIE[0]) is not None and backend.orders(SOFIE[0])
    backend.dispose()
    agent.close()
    store.close()
