"""The customer's systems unreachable: one honest apology, a person, never a hang or a loop."""

import uuid

import pytest

from scripts.model import ensure_model
from scripts.stack import Stack, free_port
from tests.e2e.conftest import Customer, assert_language, started


@pytest.fixture(scope="module")
def stack_without_backend(redis_url, tmp_path_factory):
    # Nothing listens on port 1: every backend call fails fast with BackendUnavailable.
    stack = Stack(redis_url=redis_url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  model=ensure_model(),
                  jwt_secret=uuid.uuid4().hex, log_dir=tmp_path_factory.mktemp("logs-down"),
                  extra_env={"KLANTCONTACT_DB_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/helder"})

    def start_without_seeding() -> None:  # the database is unreachable on purpose
        stack.ensure_redis()
        stack.start_handoff()
        stack.start_actions()
        stack.start_rasa()

    with started(stack, start_without_seeding):
        yield stack


@pytest.mark.parametrize("language, description, identifier, postcode, apology", [
    ("nl", "waar blijft mijn pakket", "48213377", "3511 AB", "onze systemen nu niet bereiken"),
    ("en", "where is my parcel", "60418825", "SW1A 1AA", "can't reach our systems"),
])
def test_backend_down_means_one_apology_and_a_person(stack_without_backend, language, description, identifier,
                                                    postcode, apology):
    person = Customer(stack_without_backend, {"locale": language})
    replies = person.say(description) + person.say(identifier) + person.say(postcode)
    assert_language(replies, language)
    assert sum(apology in r for r in replies) == 1
    slots = person.slots()
    assert slots["handoff_reason"] == "backend_failure"
    # Paused for the person: no loop, no second apology; one acknowledgement with the wait, then quiet.
    ack = person.say("hallo?")
    assert len(ack) == 1 and not any(apology in r for r in ack)
    assert person.say("hallo??") == []
