"""A customer who is fed up is handed over (reason "frustration") instead of being asked again."""

import asyncio

import pytest

from actions.follow_up import answer_follow_up
from actions.frustration import frustrated
from actions.not_understood import ActionHandleMiss
from tests.unit.conftest import make_tracker, responses
from tests.unit.test_actions import run, slot_events


@pytest.mark.parametrize("text", [
    "dit is echt belachelijk, ik heb al drie keer gebeld",
    "ik ben het zat met jullie",
    "het is er nog steeds niet en ik ben het echt zat",
    "voor de derde keer: mijn internet doet het niet",
    "amai, wat een zooi is dit",
    "this is ridiculous",
    "dat is niet acceptabel",
    "thats not acceptable",
    "that's not good enough",
    "how many times do I have to tell you",
    "fed up with this useless bot",
    "WAAROM WERKT MIJN INTERNET NOG STEEDS NIET",
    "where is my parcel!!!",
])
def test_fed_up_in_both_languages(text):
    assert frustrated(text)


@pytest.mark.parametrize("text", [
    "waar blijft mijn pakket?",
    "mijn internet doet het niet, kunt u helpen",
    "thanks!",
    "my order hasn't arrived yet",
    "OK",
    "ik wil een klacht indienen over de bezorger",  # a complaint is a case, not frustration by itself
    "PostNL DPD KPN",  # capitals, but short
])
def test_not_fed_up(text):
    assert not frustrated(text)


@pytest.mark.parametrize("text, language", [("wat een onzin dit, ik ben het zat", "nl"),
                                            ("this is useless, I'm fed up", "en")])
def test_a_fed_up_miss_goes_to_a_person_at_once(domain, text, language):
    tracker = make_tracker(text, "nlu_fallback", language=language)
    dispatcher, events = run(ActionHandleMiss(), tracker, domain)
    assert slot_events(events)["handoff_reason"] == "frustration" and slot_events(events)["next_step"] == "handoff"
    assert responses(dispatcher) == []  # no "could you rephrase that?"


def test_a_calm_first_miss_still_asks_to_rephrase(domain):
    dispatcher, events = run(ActionHandleMiss(), make_tracker("blabla", "nlu_fallback"), domain)
    assert "handoff_reason" not in slot_events(events)
    assert responses(dispatcher) == ["utter_rephrase"]


@pytest.mark.parametrize("text, reason", [("het werkt nog steeds niet", "complexity"),
                                          ("it STILL doesn't work, this is ridiculous", "frustration")])
def test_still_not_solved_goes_to_a_person_with_the_reason_it_shows(text, reason):
    """A replacement that does not work either goes to a person; fed up, the reason says so."""
    from rasa_sdk.executor import CollectingDispatcher

    tracker = make_tracker(text, "not_solved", slots={"customer_id": "48213377", "last_topic": "defective_product",
                                                      "topic_facts": {"reference": "RV-1"}})
    events = asyncio.run(answer_follow_up(CollectingDispatcher(), tracker, "defective_product", "not_solved"))
    assert {e["name"]: e["value"] for e in events if e.get("event") == "slot"}["handoff_reason"] == reason


@pytest.mark.parametrize("text, expected", [("ik kom er nog steeds niet in", ["utter_follow_up_account_resent"]),
                                            ("still can't get in, this is ridiculous", [])])
def test_fed_up_after_a_fix_that_did_not_work_gets_a_person_not_the_next_try(text, expected):
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text, "not_solved", slots={"customer_id": "60418825", "last_topic": "account_access",
                                                      "topic_facts": {"masked_email": "e***@example.co.uk"}})
    events = asyncio.run(answer_follow_up(dispatcher, tracker, "account_access", "not_solved"))
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert responses(dispatcher) == expected
    assert (slots["next_step"] == "handoff") is (not expected)


def test_a_complaint_after_a_fix_that_did_not_work_is_frustration_a_first_complaint_is_complex(domain):
    from actions.problems import ActionTakeProblem

    known = {"customer_id": "60418825", "customer_name": "Emily Clarke"}
    angry = "still can't get in, this is ridiculous"
    _, events = run(ActionTakeProblem(), make_tracker(angry, "complaint", language="en",
                                                      slots={**known, "bot_attempts": ["account_access:reset link sent"]}),
                    domain)
    assert slot_events(events)["handoff_reason"] == "frustration"
    _, events = run(ActionTakeProblem(), make_tracker(angry, "complaint", language="en", slots=known), domain)
    assert slot_events(events)["handoff_reason"] == "complexity"
