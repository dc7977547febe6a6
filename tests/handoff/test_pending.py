"""A request for a person the service could not take at the time is opened once it can be
(handoff/pending.py): from the event stream, with the transcript, the honest wait told in the
conversation's language, never twice, and not when it was taken or erased meanwhile."""

from __future__ import annotations

import uuid

import pytest

from contract import keys
from tests.handoff.conftest import eventually
from tests.handoff.test_api import xadd

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def waiting_tracker(conversation_id: str, language: str, reason: str = "request") -> dict:
    ask = {"nl": "ik wil een medewerker spreken", "en": "can i talk to a human please"}[language]
    return {
        "sender_id": conversation_id,
        "slots": {"language": language, "handoff_pending": reason, "customer_id": "48213377",
                  "problem_description": ask},
        "events": [{"event": "user", "text": ask, "timestamp": 1.0},
                   {"event": "bot", "text": "(honest message)", "timestamp": 2.0}],
        "latest_message": {"intent": {"name": "request_human"}},
        "latest_input_channel": "socketio",
    }


def request_left_on_the_stream(redis_sync, conversation_id: str, reason: str = "request") -> None:
    """What Rasa's broker writes when action_handoff could not reach the service."""
    xadd(redis_sync, conversation_id, {"event": "user", "text": "medewerker", "timestamp": 1.0,
                                       "input_channel": "socketio", "parse_data": {"language": "nl"}})
    xadd(redis_sync, conversation_id, {"event": "slot", "name": "handoff_pending", "value": reason, "timestamp": 2.0})


async def queued_case_of(service, conversation_id):
    case = await service.store.open_case_of(conversation_id)
    return case if case and case.status == "queued" else None


@pytest.mark.parametrize("language", ["nl", "en"])
async def test_a_request_left_while_the_service_was_down_is_opened_with_the_honest_wait(
        service, redis_sync, fake_rasa, language):
    await service.agent("eva", present=True)
    conversation_id = uuid.uuid4().hex
    fake_rasa.trackers[conversation_id] = waiting_tracker(conversation_id, language)
    request_left_on_the_stream(redis_sync, conversation_id)

    case = await eventually(lambda: queued_case_of(service, conversation_id))
    assert case.reason == "request" and case.language == language and case.channel == "socketio"
    detail = await service.store.get_case(case.id)
    assert detail.conversation_id == conversation_id

    async def told():
        calls = fake_rasa.calls(conversation_id)
        return [c for c in calls if c["path"].endswith("/execute")]
    executed = await eventually(told)
    assert executed[0]["json"] == {"name": "utter_handoff_queued"}
    assert executed[0]["query"]["output_channel"] == "latest"
    events = next(c["json"] for c in fake_rasa.calls(conversation_id)
                  if c["path"].endswith("/tracker/events") and isinstance(c["json"], list))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_pending"] is None and slots["handoff_case_id"] == case.id
    assert slots["queue_position"] == "1" and int(slots["queue_minutes"]) >= 1
    assert events[-1] == {"event": "pause"}
    assert await eventually(lambda: _gone(redis_sync, conversation_id))


async def _gone(redis_sync, conversation_id):
    return not redis_sync.hexists(keys.pending_requests(), conversation_id)


async def test_nobody_available_means_a_promised_reply_time(service, redis_sync, fake_rasa):
    conversation_id = uuid.uuid4().hex
    fake_rasa.trackers[conversation_id] = waiting_tracker(conversation_id, "en", reason="backend_failure")
    request_left_on_the_stream(redis_sync, conversation_id, reason="backend_failure")

    async def told():
        return [c for c in fake_rasa.calls(conversation_id) if c["path"].endswith("/execute")]
    executed = await eventually(told)
    assert executed[0]["json"] == {"name": "utter_handoff_no_agents"}
    events = next(c["json"] for c in fake_rasa.calls(conversation_id) if isinstance(c["json"], list))
    reply_by = next(e["value"] for e in events if e.get("name") == "reply_by")
    assert reply_by.startswith(("today at", "tomorrow at")) or " at " in reply_by
    case = await service.store.open_case_of(conversation_id)
    assert case.reason == "backend_failure"


async def test_rasa_unreachable_keeps_the_request_until_it_answers(service, redis_sync, fake_rasa):
    conversation_id = uuid.uuid4().hex
    fake_rasa.trackers[conversation_id] = waiting_tracker(conversation_id, "nl")
    fake_rasa.fail_status = 503
    request_left_on_the_stream(redis_sync, conversation_id)
    await eventually(lambda: _noted(redis_sync, conversation_id))
    await eventually(lambda: _asked_rasa(fake_rasa, conversation_id))
    assert await service.store.open_case_of(conversation_id) is None
    assert redis_sync.hexists(keys.pending_requests(), conversation_id)

    fake_rasa.fail_status = None
    service.app.state.pending.wake()
    assert await eventually(lambda: queued_case_of(service, conversation_id))
    assert await eventually(lambda: _gone(redis_sync, conversation_id))


async def _noted(redis_sync, conversation_id):
    return redis_sync.hexists(keys.pending_requests(), conversation_id)


async def _asked_rasa(fake_rasa, conversation_id):
    return any(c["path"].endswith("/tracker") for c in fake_rasa.calls(conversation_id))


async def test_a_request_taken_meanwhile_is_not_opened_again(service, redis_sync, fake_rasa):
    """The customer asked again once the service was back, and that worked: the slot is empty."""
    conversation_id = uuid.uuid4().hex
    tracker = waiting_tracker(conversation_id, "nl")
    tracker["slots"]["handoff_pending"] = None
    fake_rasa.trackers[conversation_id] = tracker
    request_left_on_the_stream(redis_sync, conversation_id)
    await eventually(lambda: _asked_rasa(fake_rasa, conversation_id))
    assert await eventually(lambda: _gone(redis_sync, conversation_id))
    assert await service.store.open_case_of(conversation_id) is None
    assert not any(c["path"].endswith("/execute") for c in fake_rasa.calls(conversation_id))


async def test_opening_twice_gives_one_case_and_one_message(service, redis_sync, fake_rasa):
    conversation_id = uuid.uuid4().hex
    fake_rasa.trackers[conversation_id] = waiting_tracker(conversation_id, "nl")
    request_left_on_the_stream(redis_sync, conversation_id)
    first = await eventually(lambda: queued_case_of(service, conversation_id))
    await eventually(lambda: _gone(redis_sync, conversation_id))
    # The same SlotSet read again (a redelivered batch): the tracker says it was taken.
    fake_rasa.trackers[conversation_id]["slots"]["handoff_pending"] = None
    request_left_on_the_stream(redis_sync, conversation_id)

    async def looked_again():
        looks = [c for c in fake_rasa.calls(conversation_id) if c["path"].endswith("/tracker")]
        return len(looks) >= 2 and not redis_sync.hexists(keys.pending_requests(), conversation_id)
    await eventually(looked_again)
    assert (await service.store.open_case_of(conversation_id)).id == first.id
    assert len([c for c in fake_rasa.calls(conversation_id) if c["path"].endswith("/execute")]) == 1
