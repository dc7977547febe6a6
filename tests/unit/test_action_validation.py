"""The compiled validators of action server responses and of events posted to the HTTP API accept and
refuse exactly what Rasa's do."""

import copy
from types import SimpleNamespace

import jsonschema
import pytest
import rasa.server
from rasa.core.actions.action import RemoteAction

from bot import action_validation, rasa_patches

#: Rasa's own check of posted events (taken before any test installs the patches).
RASA_VALIDATE_EVENTS = rasa.server.validate_events_in_request_body

VALID = [
    {"events": [], "responses": []},
    {},
    {"events": [{"event": "slot", "name": "customer_id", "value": "C1", "timestamp": None}],
     "responses": [{"response": "utter_greet"}, {"text": "Uw bestelling is onderweg.", "buttons": []}]},
    {"events": [{"event": "bot", "text": "hi", "data": {}, "metadata": {"agent": "Sam"}},
                {"event": "followup", "name": "action_listen"},
                {"event": "active_loop", "name": None},
                {"event": "pause"}, {"event": "resume"}], "responses": []},
]
INVALID = [
    {"events": "not a list"},
    {"events": [{"event": "slot", "name": "x", "value": 1}, {"event": "slot"}]},  # a later event
    {"events": [{"event": "slot", "name": "x", "timestamp": "yesterday"}]},  # the common part
    {"events": [{"name": "x"}]},  # no type
    {"events": ["slot"]},
    {"events": [], "responses": "hi"},
    {"events": [{"event": "slot"}]},  # a slot event needs a name
    {"events": [{"event": "no_such_event"}]},
    {"responses": [1, 2]},
    [],
]


def original(result):
    """Rasa's own check: jsonschema.validate against the response schema."""
    jsonschema.validate(result, RemoteAction.action_response_format_spec())


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    """Rasa as the server's entry point (bot/server.py) changes it."""
    rasa_patches.install()


def test_installed_by_the_servers_patches():
    assert RemoteAction._validate_action_result is action_validation.validate_action_result


@pytest.mark.parametrize("result", VALID)
def test_accepts_what_rasa_accepts(result):
    original(copy.deepcopy(result))
    assert RemoteAction("action_x", None)._validate_action_result(copy.deepcopy(result)) is True


@pytest.mark.parametrize("result", INVALID)
def test_refuses_what_rasa_refuses_with_the_same_error(result):
    with pytest.raises(jsonschema.ValidationError) as theirs:
        original(copy.deepcopy(result))
    with pytest.raises(jsonschema.ValidationError) as ours:
        RemoteAction("action_x", None)._validate_action_result(copy.deepcopy(result))
    assert ours.value.message.startswith(theirs.value.message)
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.path) == list(theirs.value.path)


def test_every_event_type_has_one_schema_so_the_per_type_check_is_used():
    by_type = action_validation._by_event_type()
    assert by_type is not None
    assert action_validation._response_without_events() is not None
    assert {"slot", "bot", "user", "action", "followup", "pause", "resume", "active_loop"} <= set(by_type)


@pytest.mark.parametrize("result", VALID)
def test_a_valid_response_passes_the_per_type_check_without_the_full_one(result, monkeypatch):
    monkeypatch.setattr(action_validation, "_validator", lambda: pytest.fail("the full check ran"))
    assert action_validation.validate_action_result(None, copy.deepcopy(result)) is True


# --- events posted to the HTTP API (POST /conversations/<id>/tracker/events and others) -------------

POSTED_VALID = [
    {"event": "bot", "text": "Goedemiddag, u spreekt met Sam.", "metadata": {"agent_id": "sam", "message_id": "m1"}},
    {"event": "pause"},
    [{"event": "resume"}, {"event": "action", "name": "action_handback"}],
    [{"event": "slot", "name": "language", "value": "en"}, {"event": "followup", "name": "action_listen"}],
    [],
]
POSTED_INVALID = [
    {"event": "slot", "value": "no name"},
    {"event": "no_such_event"},
    {"text": "no type"},
    [{"event": "pause"}, {"event": "slot"}],  # a later event
    [{"event": "pause", "timestamp": "yesterday"}],  # the common part
    ["pause"],
    "pause",
]


@pytest.mark.parametrize("body", POSTED_VALID)
def test_posted_events_rasa_accepts_are_accepted(body):
    RASA_VALIDATE_EVENTS(SimpleNamespace(json=copy.deepcopy(body)))
    assert rasa.server.validate_events_in_request_body(SimpleNamespace(json=copy.deepcopy(body))) is None


@pytest.mark.parametrize("body", POSTED_VALID)
def test_valid_posted_events_pass_the_per_type_check_without_the_full_one(body, monkeypatch):
    monkeypatch.setattr(action_validation, "_events_validator", lambda: pytest.fail("the full check ran"))
    action_validation.validate_events_in_request_body(SimpleNamespace(json=copy.deepcopy(body)))


@pytest.mark.parametrize("body", POSTED_INVALID)
def test_posted_events_rasa_refuses_get_rasas_400(body):
    with pytest.raises(rasa.server.ErrorResponse) as theirs:
        RASA_VALIDATE_EVENTS(SimpleNamespace(json=copy.deepcopy(body)))
    with pytest.raises(rasa.server.ErrorResponse) as ours:
        rasa.server.validate_events_in_request_body(SimpleNamespace(json=copy.deepcopy(body)))
    assert ours.value.status == theirs.value.status == 400
    assert ours.value.error_info == theirs.value.error_info
