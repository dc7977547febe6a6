"""The Rasa server observes a turn itself (bot/local_observer.py) exactly as the action server's
observer would, and calls the action server when the turn needs it; both languages."""

import asyncio

import pytest
from rasa.core.actions.action import ActionExtractSlots
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.session import ActionObserveTurn
from bot import local_observer, rasa_patches
from bot.language import get_detector

DOMAIN = Domain.load("domain")
ENDPOINT = EndpointConfig(url="http://127.0.0.1:1/webhook")


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    rasa_patches.install()


@pytest.fixture
def remote_calls(monkeypatch):
    """Rasa's own validation (the call to the action server), recorded instead of made."""
    calls = []

    async def rasa_validation(self, extraction_events, output_channel, nlg, tracker, domain):
        calls.append(tracker.sender_id)
        return [SlotSet("customer_id", "from the action server")]
    monkeypatch.setattr(local_observer, "_rasa_validation", rasa_validation)
    return calls


def rasa_tracker(text, intent="inform", slots=None, metadata=None, channel="rest", paused=False, detect=True,
                 session_metadata=None):
    parse_data = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}
    if detect and text and not text.startswith("/"):
        parse_data["language_detection"] = get_detector().detect(text).as_dict()
    events = [ActionExecuted("action_session_start"), SessionStarted()]
    if session_metadata is not None:
        events.append(SlotSet("session_started_metadata", session_metadata))
    events += [SlotSet(name, value) for name, value in (slots or {}).items()]
    events.append(ActionExecuted("action_listen"))
    if paused:
        events.append(ConversationPaused())
    events.append(UserUttered(text, parse_data["intent"], [], parse_data, input_channel=channel,
                              metadata=metadata or {}))
    return DialogueStateTracker.from_events("c-local", events, slots=DOMAIN.slots)


def locally(tracker, extracted=()):
    return asyncio.run(local_observer.execute_validation_action(
        ActionExtractSlots(ENDPOINT), list(extracted), None, None, tracker, DOMAIN))


def on_the_action_server(tracker, extracted=()):
    """What Rasa's own path returns: the observer run on the tracker Rasa sends, merged as Rasa merges."""
    sent = DialogueStateTracker.from_events(tracker.sender_id, tracker.events_after_latest_restart() + list(extracted),
                                            slots=DOMAIN.slots)
    sdk_tracker = Tracker.from_dict(sent.current_state(EventVerbosity.ALL))
    answer = asyncio.run(ActionObserveTurn().run(CollectingDispatcher(), sdk_tracker, DOMAIN.as_dict()))
    validated = [SlotSet(e["name"], e["value"]) for e in answer]
    names = {e.key for e in validated}
    return validated + [e for e in extracted if e.key not in names]


def as_pairs(events):
    return [(e.key, e.value) for e in events]


TURNS = [
    # (text, intent, slots, metadata): language switches, sticky short messages, register, misses
    ("ok", "affirm", {"language": "en", "register": "u"}, None),
    ("ok", "affirm", {"language": "nl", "register": "u"}, None),
    ("could you tell me where my parcel is, please", "order_status", {"language": "nl", "register": "u"}, None),
    ("kun je even kijken waar mijn pakket blijft", "order_status", {"language": "en", "register": "u"}, None),
    ("kunt u kijken waar mijn pakket blijft", "order_status", {"language": "nl", "register": "je"}, None),
    ("waar is mijn bestelling", "order_status", {"language": "nl", "consecutive_misses": 1.0}, None),
    ("where is my order", "order_status", {"language": "en", "consecutive_misses": 1.0}, None),
    ("nee", "deny", {"language": "nl", "consecutive_misses": 1.0}, None),
    ("blurp", "nlu_fallback", {"language": "en", "consecutive_misses": 1.0}, None),
    ("/affirm", "affirm", {"language": "nl", "register": "je"}, None),
    ("hallo", "greet", {}, {"locale": "en-GB"}),
    ("hi", "greet", {}, {"locale": "nl-BE"}),
    ("48213377", "inform", {}, None),
    ("in English please", "switch_language", {"language": "nl"}, None),
    # an identified WhatsApp customer: the channel has nothing more to say
    ("mijn internet doet het niet", "report_outage", {"language": "nl", "customer_id": "48213377"},
     {"phone": "+31612345678"}),
]


@pytest.mark.parametrize("text, intent, slots, metadata", TURNS)
def test_the_same_slots_in_the_same_order_as_the_action_servers_observer(remote_calls, text, intent, slots, metadata):
    channel = "whatsapp" if metadata and "phone" in metadata else "rest"
    tracker = rasa_tracker(text, intent, slots, metadata, channel=channel)
    assert as_pairs(locally(tracker)) == as_pairs(on_the_action_server(tracker))
    assert remote_calls == []


@pytest.mark.parametrize("language, text", [("nl", "mijn postcode is 3511 AB"), ("en", "my postcode is 3511 AB")])
def test_extracted_slots_are_kept_beside_what_the_observer_sets(remote_calls, language, text):
    tracker = rasa_tracker(text, "inform", {"language": language, "consecutive_misses": 2.0})
    extracted = [SlotSet("postcode", "3511 AB"), SlotSet("consecutive_misses", 2.0)]
    local = locally(tracker, extracted)
    assert as_pairs(local) == as_pairs(on_the_action_server(tracker, extracted))
    assert ("postcode", "3511 AB") in as_pairs(local) and ("consecutive_misses", 0.0) in as_pairs(local)


def test_an_undetected_message_is_detected_as_the_action_server_would(remote_calls):
    tracker = rasa_tracker("could you check my invoice please", "invoice", {"language": "nl"}, detect=False)
    assert as_pairs(locally(tracker)) == as_pairs(on_the_action_server(tracker)) == [("language", "en")]


def test_the_sessions_metadata_gives_the_hint_when_the_message_has_none(remote_calls):
    tracker = rasa_tracker("hoi", "greet", {}, session_metadata={"locale": "en-US"})
    assert as_pairs(locally(tracker)) == as_pairs(on_the_action_server(tracker))


@pytest.mark.parametrize("metadata, channel", [
    ({"phone": "+31612345678"}, "whatsapp"),  # who is this number? only the backend knows
    ({"shop_token": "eyJ..."}, "rest"),       # a signed token: the action server checks it
])
def test_a_channel_that_may_vouch_for_the_customer_goes_to_the_action_server(remote_calls, metadata, channel):
    tracker = rasa_tracker("hallo", "greet", {"language": "nl"}, metadata, channel=channel)
    assert as_pairs(locally(tracker)) == [("customer_id", "from the action server")]
    assert remote_calls == ["c-local"]


def test_a_phone_number_from_the_web_is_no_identity_and_needs_no_call(remote_calls):
    tracker = rasa_tracker("hallo", "greet", {"language": "nl"}, {"phone": "+31612345678"}, channel="socketio")
    assert "customer_id" not in dict(as_pairs(locally(tracker)))
    assert remote_calls == []


@pytest.mark.parametrize("language, text", [("nl", "hallo? is daar iemand"), ("en", "hello? anyone there")])
def test_a_case_waiting_for_a_person_goes_to_the_action_server(remote_calls, language, text):
    waiting = rasa_tracker(text, "greet", {"language": language, "handoff_case_id": "C-1"}, paused=True)
    locally(waiting)
    assert remote_calls == ["c-local"]
    claimed = rasa_tracker(text, "greet", {"language": language, "handoff_case_id": "C-1", "agent_name": "Eva"},
                           paused=True)
    assert as_pairs(locally(claimed)) == as_pairs(on_the_action_server(claimed))
    assert remote_calls == ["c-local"]  # an agent has it: nothing for the action server to do


def test_a_domain_without_the_observer_is_left_to_rasa(remote_calls):
    bare = Domain.from_dict({"slots": {}, "actions": []})
    tracker = rasa_tracker("hallo", "greet")
    asyncio.run(local_observer.execute_validation_action(ActionExtractSlots(ENDPOINT), [], None, None, tracker, bare))
    assert remote_calls == ["c-local"]


def test_installed_by_the_servers_patches():
    assert ActionExtractSlots._execute_validation_action is local_observer.execute_validation_action
