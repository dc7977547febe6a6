"""The action server gets the domain without the responses (bot/domain_for_actions.py), all else as Rasa sends it."""

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import domain_for_actions, rasa_patches

DOMAIN = Domain.load("domain")
ENDPOINT = EndpointConfig(url="http://127.0.0.1:1/webhook", enable_selective_domain=True)


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    rasa_patches.install()


def _call(action_name):
    tracker = DialogueStateTracker.from_events("c1", [], slots=DOMAIN.slots)
    return RemoteAction(action_name, ENDPOINT)._action_call_format(tracker, DOMAIN)


def test_installed_by_the_servers_patches():
    assert RemoteAction._action_call_format is domain_for_actions.action_call_format


def test_a_form_validator_gets_everything_of_the_domain_but_the_responses():
    sent = _call("validate_identification_form")["domain"]
    full = DOMAIN.as_dict()
    assert "responses" in full and "responses" not in sent
    assert sent == {key: value for key, value in full.items() if key != "responses"}
    # What rasa-sdk's form validation reads is there, unchanged.
    assert sent["forms"]["identification_form"] == full["forms"]["identification_form"]
    assert sent["slots"] is full["slots"]


def test_the_trimmed_domain_is_made_once_per_domain():
    assert _call("validate_identification_form")["domain"] is _call("validate_identification_form")["domain"]
    other = Domain.from_dict({"slots": {"x": {"type": "text", "mappings": [{"type": "from_text"}]}},
                              "forms": {"x_form": {"required_slots": ["x"]}}, "actions": ["validate_x_form"],
                              "responses": {"utter_x": [{"text": "x"}]}})
    tracker = DialogueStateTracker.from_events("c1", [], slots=other.slots)
    sent = RemoteAction("validate_x_form", ENDPOINT)._action_call_format(tracker, other)["domain"]
    assert "x" in sent["slots"] and "responses" not in sent


def test_an_action_that_gets_no_domain_still_gets_none_and_the_rest_as_rasa_builds_it():
    call = _call("action_take_problem")
    assert "domain" not in call
    assert call["next_action"] == "action_take_problem" and call["sender_id"] == "c1" and "tracker" in call
