"""The compiled validator of action server responses accepts and refuses exactly what Rasa's does."""

import copy

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot import action_validation, rasa_patches

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
    split = action_validation._per_event_type()
    assert split is not None
    _, by_type = split
    assert {"slot", "bot", "user", "action", "followup", "pause", "resume", "active_loop"} <= set(by_type)


@pytest.mark.parametrize("result", VALID)
def test_a_valid_response_passes_the_per_type_check_without_the_full_one(result, monkeypatch):
    monkeypatch.setattr(action_validation, "_validator", lambda: pytest.fail("the full check ran"))
    assert action_validation.validate_action_result(None, copy.deepcopy(result)) is True
