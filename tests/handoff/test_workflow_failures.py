"""The case workflow (handoff/workflow.py) with Rasa or Redis failing at each step.

Whatever fails, two things must hold afterwards, and each test asserts both:

- **no silent bot**: if Rasa was left paused (every pause it received counts as done, even one it
  answered with an error), the conversation has an open case (queued or claimed) an agent sees;
- **no lost case**: a case that existed is still there, open, and can be worked once the failing
  part is back.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, List, Optional

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from handoff.errors import CaseNotFound, Conflict
from handoff.models import CaseCreate
from handoff.rasa_client import RasaError
from tests.fakes.packets import packet
from tests.handoff.conftest import FakeRasa, Service
from tests.handoff.test_api import claimed_case, open_case

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


# --- what the customer would notice -----------------------------------------------------------------

def rasa_events(fake: FakeRasa, conversation_id: str) -> List[Dict[str, Any]]:
    """Every tracker event the service sent to Rasa for the conversation, in order."""
    events: List[Dict[str, Any]] = []
    for call in fake.calls(conversation_id):
        if call["method"] == "POST" and call["path"].endswith("/tracker/events"):
            body = call["json"]
            events += body if isinstance(body, list) else [body]
    return events


def rasa_paused(fake: FakeRasa, conversation_id: str, initially: bool) -> bool:
    """Whether the bot is paused now, pessimistically: a refused pause or resume counts as done."""
    paused = initially
    for event in rasa_events(fake, conversation_id):
        if event.get("event") == "pause":
            paused = True
        elif event.get("event") == "resume":
            paused = False
    return paused


async def assert_no_silent_bot(service: Service, fake: FakeRasa, conversation_id: str, *,
                               initially_paused: bool = False) -> None:
    """A paused bot always has an open case behind it that the consoles list."""
    if rasa_paused(fake, conversation_id, initially_paused):
        case = await service.store.open_case_of(conversation_id)
        assert case is not None and case.status in ("queued", "human"), "silent bot: paused without a case"
        listed = [c.id for c in await service.store.list_cases()]
        assert case.id in listed


def fail_path(ending: str, event: Optional[str] = None) -> Callable[[Dict[str, Any]], bool]:
    """Rasa refuses the calls to paths ending in ``ending`` (and carrying ``event``, if given)."""
    def check(record: Dict[str, Any]) -> bool:
        if not record["path"].endswith(ending):
            return False
        if event is None:
            return True
        body = record["json"]
        events = body if isinstance(body, list) else [body]
        return any(isinstance(e, dict) and e.get("event") == event for e in events)
    return check


def redis_down(*_: Any, **__: Any) -> Any:
    raise RedisConnectionError("injected: Connection reset by peer")


def live_conversation(fake: FakeRasa, conversation_id: str) -> None:
    """A conversation the bot is handling (known to Rasa, no case)."""
    fake.trackers[conversation_id] = {
        "sender_id": conversation_id, "latest_input_channel": "socketio",
        "slots": {"language": "nl", "problem_description": "mijn pakket is zoek"},
        "latest_message": {"intent": {"name": "order_status"}},
        "events": [{"event": "user", "text": "mijn pakket is zoek", "timestamp": 1714557600.0},
                   {"event": "bot", "text": "Ik kijk het na.", "timestamp": 1714557601.0}],
    }


async def cases_of(client: httpx.AsyncClient, conversation_id: str) -> List[Dict[str, Any]]:
    response = await client.get("/api/cases", params={"conversation_id": conversation_id})
    return response.json()


# --- take over: the conversation the bot is handling -----------------------------------------------

async def test_takeover_with_rasa_failing_to_pause_leaves_the_bot_answering_and_no_case(
        service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    live_conversation(fake_rasa, "conv-tp")
    fake_rasa.fail_when = fail_path("/tracker/events", "pause")
    response = await eva.post("/api/conversations/conv-tp/takeover")
    assert response.status_code == 502
    assert response.json()["detail"].startswith("not taken over: Rasa refused the pause")
    assert "the bot keeps the conversation" in response.json()["detail"]
    # The refused pause might still have happened: the service resumed the bot to be sure.
    assert [e["event"] for e in rasa_events(fake_rasa, "conv-tp")] == ["pause", "resume"]
    await assert_no_silent_bot(service, fake_rasa, "conv-tp")
    assert await service.store.open_case_of("conv-tp") is None
    assert await cases_of(eva, "conv-tp") == []
    assert "action_agent_joined" not in str(fake_rasa.calls("conv-tp"))

    # Rasa back: the takeover works, and the bot could still have escalated on its own meanwhile.
    fake_rasa.fail_when = None
    taken = await eva.post("/api/conversations/conv-tp/takeover")
    assert taken.status_code == 200 and taken.json()["owner"] == "eva"
    assert [c["id"] for c in await cases_of(eva, "conv-tp")] == [taken.json()["id"]]


async def test_takeover_with_rasa_unreachable_for_the_tracker_changes_nothing(
        service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    live_conversation(fake_rasa, "conv-tt")
    fake_rasa.drop_connections = True
    response = await eva.post("/api/conversations/conv-tt/takeover")
    assert response.status_code == 502 and "not taken over: Rasa is unreachable" in response.json()["detail"]
    fake_rasa.drop_connections = False
    assert rasa_events(fake_rasa, "conv-tt") == []
    assert await service.store.open_case_of("conv-tt") is None


async def test_takeover_with_redis_failing_to_store_the_case_never_pauses_the_bot(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    live_conversation(fake_rasa, "conv-tr")
    monkeypatch.setattr(service.store, "open_case", redis_down)
    response = await eva.post("/api/conversations/conv-tr/takeover")
    assert response.status_code == 503 and response.json() == {"detail": "storage unavailable, try again"}
    assert rasa_events(fake_rasa, "conv-tr") == []  # never paused
    await assert_no_silent_bot(service, fake_rasa, "conv-tr")
    monkeypatch.undo()
    assert await service.store.open_case_of("conv-tr") is None


async def test_takeover_whose_undo_also_fails_leaves_the_case_with_the_agent(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    live_conversation(fake_rasa, "conv-tu")
    fake_rasa.fail_when = fail_path("/tracker/events", "pause")
    monkeypatch.setattr(service.store, "discard", redis_down)
    response = await eva.post("/api/conversations/conv-tu/takeover")
    assert response.status_code == 502 and "hand it back or try again" in response.json()["detail"]
    # Not lost and not hidden: the agent sees the case as theirs and can give it back.
    case = await service.store.open_case_of("conv-tu")
    assert case is not None and case.status == "human" and case.owner == "eva"
    await assert_no_silent_bot(service, fake_rasa, "conv-tu")
    fake_rasa.fail_when = None
    assert (await eva.post(f"/api/cases/{case.id}/handback")).status_code == 200


# --- take over: a case waiting in the queue --------------------------------------------------------

async def test_takeover_of_a_queued_case_with_rasa_failing_puts_it_back_in_the_queue(
        service: Service, fake_rasa: FakeRasa) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    created = (await open_case(service, "conv-tq")).json()
    fake_rasa.fail_when = fail_path("/tracker/events", "pause")
    response = await eva.post("/api/conversations/conv-tq/takeover")
    assert response.status_code == 502 and "the case is back in the queue" in response.json()["detail"]
    case = (await eva.get(f"/api/cases/{created['case_id']}")).json()
    assert case["status"] == "queued" and case["owner"] is None and case["claimed_at"] is None
    assert case["position"] == 1
    assert [c["id"] for c in (await eva.get("/api/queue")).json()] == [created["case_id"]]
    # The bot paused itself when it queued the case: it stays paused, with the case behind it.
    await assert_no_silent_bot(service, fake_rasa, "conv-tq", initially_paused=True)

    fake_rasa.fail_when = None
    claimed = await tom.post(f"/api/cases/{created['case_id']}/claim")
    assert claimed.status_code == 200 and claimed.json()["owner"] == "tom"


async def test_takeover_of_a_queued_case_with_redis_failing_to_claim_never_pauses(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-tc")).json()["case_id"]
    monkeypatch.setattr(service.store, "claim", redis_down)
    response = await eva.post("/api/conversations/conv-tc/takeover")
    assert response.status_code == 503
    assert rasa_events(fake_rasa, "conv-tc") == []
    monkeypatch.undo()
    assert (await service.store.get_case(case_id)).status == "queued"
    await assert_no_silent_bot(service, fake_rasa, "conv-tc", initially_paused=True)


# --- claim ------------------------------------------------------------------------------------------

async def test_claim_with_redis_failing_tells_the_customer_nothing_and_keeps_the_case_queued(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-cr")).json()["case_id"]
    monkeypatch.setattr(service.store, "claim", redis_down)
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 503
    assert fake_rasa.calls("conv-cr") == []  # nobody announced
    monkeypatch.undo()
    assert (await service.store.get_case(case_id)).status == "queued"


async def test_claim_holds_when_rasa_cannot_announce_the_agent(service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-ca")).json()["case_id"]
    fake_rasa.fail_status = 500
    response = await eva.post(f"/api/cases/{case_id}/claim")
    assert response.status_code == 200 and response.json()["owner"] == "eva"
    await assert_no_silent_bot(service, fake_rasa, "conv-ca", initially_paused=True)


# --- hand back and resolve ----------------------------------------------------------------------------

@pytest.mark.parametrize("failing", [fail_path("/tracker/events", "resume"), fail_path("/execute")],
                         ids=["resume", "action_handback"])
async def test_handback_with_rasa_failing_keeps_the_case_with_its_owner(
        service: Service, fake_rasa: FakeRasa, failing: Callable[[Dict[str, Any]], bool]) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-hb", eva)
    fake_rasa.fail_when = failing
    response = await eva.post(f"/api/cases/{case_id}/handback")
    assert response.status_code == 502 and response.json()["detail"].startswith("not handed back: Rasa refused")
    case = await service.store.get_case(case_id)
    assert case.status == "human" and case.owner == "eva"
    await assert_no_silent_bot(service, fake_rasa, "conv-hb", initially_paused=True)
    fake_rasa.fail_when = None
    assert (await eva.post(f"/api/cases/{case_id}/handback")).json()["status"] == "bot"


async def test_handback_with_redis_failing_after_rasa_keeps_the_case_open(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-hr", eva)
    monkeypatch.setattr(service.store, "finish", redis_down)
    assert (await eva.post(f"/api/cases/{case_id}/handback")).status_code == 503
    monkeypatch.undo()
    # The bot answers again (resumed) and the case is still open and Eva's: nothing silent, nothing lost.
    assert not rasa_paused(fake_rasa, "conv-hr", initially=True)
    case = await service.store.get_case(case_id)
    assert case.status == "human" and case.owner == "eva"
    assert (await eva.post(f"/api/cases/{case_id}/handback")).json()["status"] == "bot"


async def test_resolve_with_rasa_failing_keeps_the_case_open(service: Service, fake_rasa: FakeRasa) -> None:
    eva = await service.agent("eva")
    case_id = await claimed_case(service, "conv-rr", eva)
    fake_rasa.fail_when = fail_path("/tracker/events", "resume")
    response = await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "refunded"})
    assert response.status_code == 502 and response.json()["detail"].startswith("not resolved: Rasa refused")
    assert (await service.store.get_case(case_id)).status == "human"
    await assert_no_silent_bot(service, fake_rasa, "conv-rr", initially_paused=True)


async def test_resolve_with_redis_failing_after_rasa_keeps_the_case_findable(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    eva = await service.agent("eva")
    case_id = (await open_case(service, "conv-rx")).json()["case_id"]
    monkeypatch.setattr(service.store, "finish", redis_down)
    assert (await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "spam"})).status_code == 503
    monkeypatch.undo()
    assert [c["id"] for c in (await eva.get("/api/queue")).json()] == [case_id]
    resolved = await eva.post(f"/api/cases/{case_id}/resolve", json={"outcome": "spam"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"


# --- opening -------------------------------------------------------------------------------------------

async def test_the_bots_request_with_redis_down_asks_nothing_of_rasa(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.store, "open_case", redis_down)
    response = await open_case(service, "conv-or")
    assert response.status_code == 503
    assert fake_rasa.calls("conv-or") == []
    # The bot tells the customer the service is down and leaves the request on the stream
    # (handoff/pending.py), so nothing is paused here and nothing is lost.


async def test_a_late_request_with_rasa_failing_is_stored_and_told_on_the_next_try(
        service: Service, fake_rasa: FakeRasa) -> None:
    conversation_id = uuid.uuid4().hex
    workflow = service.app.state.workflow
    request = CaseCreate.model_validate(packet(conversation_id, reason="request"))
    fake_rasa.fail_when = fail_path("/tracker/events", "pause")
    with pytest.raises(RasaError):
        await workflow.open_and_tell(request)
    # The case waits in the queue (visible), the bot was not left paused without it.
    case = await service.store.open_case_of(conversation_id)
    assert case is not None and case.status == "queued"
    await assert_no_silent_bot(service, fake_rasa, conversation_id)

    fake_rasa.fail_when = None
    assert await workflow.open_and_tell(request) == case.id  # the same case, now told
    assert fake_rasa.calls(conversation_id)[-1]["json"]["name"].startswith("utter_handoff_")
    await assert_no_silent_bot(service, fake_rasa, conversation_id)


async def test_a_late_request_with_redis_failing_never_pauses_the_bot(
        service: Service, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation_id = uuid.uuid4().hex
    request = CaseCreate.model_validate(packet(conversation_id, reason="request"))
    monkeypatch.setattr(service.store, "open_case", redis_down)
    with pytest.raises(RedisConnectionError):
        await service.app.state.workflow.open_and_tell(request)
    assert fake_rasa.calls(conversation_id) == []


# --- the undo steps themselves ---------------------------------------------------------------------

async def test_an_undo_never_takes_a_case_from_someone_who_got_it_meanwhile(service: Service) -> None:
    eva, tom = await service.agent("eva"), await service.agent("tom")
    case_id = await claimed_case(service, "conv-undo", tom)
    eva_agent = await service.store.get_agent("eva")
    with pytest.raises(Conflict, match="changed meanwhile"):
        await service.store.release(case_id, eva_agent)
    with pytest.raises(Conflict, match="changed meanwhile"):
        await service.store.discard(case_id, eva_agent)
    with pytest.raises(CaseNotFound):
        await service.store.release("c_nope", eva_agent)
    case = (await eva.get(f"/api/cases/{case_id}")).json()
    assert case["status"] == "human" and case["owner"] == "tom"
