"""Following the customer (issue 12), action by action, in both languages.

Identity at any moment, complex cases asked once, follow-ups about what was just handled, a
repeated case getting the next step, the acknowledgement while a case waits, "ok" at any point,
and the NLU rule that makes identity details an ``inform``.
"""

import asyncio
import time

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import AsyncBackend
from actions.contact_details import infer_contact_field
from actions.follow_up import ActionFollowUp
from actions.knowledge import ActionAnswerKnowledge
from actions.identification import ActionAskIdentifier, ActionAskPostcode, ActionIdentify, ValidateIdentificationForm
from actions.problems import ActionOutOfScope, ActionSolveProblem, ActionTakeProblem
from actions.session import ActionAcknowledge, ActionObserveTurn
from bot.nlu.identity_intent import identity_intent
from tests.unit.conftest import CancelledThenShipped, make_tracker, responses, slot_events

LANGUAGES = ["nl", "en"]
LOTTE = {"customer_id": "39481726", "customer_name": "Lotte Visser", "identity_verified_by": "customer_number+postcode",
         "identity_verified_at": time.time()}
SANNE = {"customer_id": "48213377", "customer_name": "Sanne de Vries", "identity_verified_by": "customer_number+postcode",
         "identity_verified_at": time.time()}


def run(action, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher, events


def entity(name, value):
    return {"entity": name, "value": value}


# -- identity at any moment ------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_identity_first_verifies_and_tells_the_outage(domain, language):
    tracker = make_tracker("goedemiddag, ik ben klant 39481726, postcode 3581 KP", "inform", language=language,
                           slots={"identifier": "39481726", "postcode": "3581 KP"})
    dispatcher, events = run(ActionIdentify(), tracker, domain)
    slots = slot_events(events)
    assert slots["customer_id"] == "39481726" and slots["next_step"] == "solve"
    assert responses(dispatcher) == ["utter_identified", "utter_outage_notice"]
    assert slots["last_topic"] == "report_outage"


@pytest.mark.parametrize("language", LANGUAGES)
def test_after_identity_without_a_problem_the_bot_asks_what_it_is_about(domain, language):
    events = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_outage_notice"}}]
    tracker = make_tracker("...", "inform", language=language, slots=LOTTE)
    tracker.events.extend(events)
    dispatcher, _ = run(ActionSolveProblem(), tracker, domain)
    assert responses(dispatcher) == ["utter_ask_problem_after_outage"]
    dispatcher, _ = run(ActionSolveProblem(), make_tracker("x", "inform", language=language, slots=SANNE), domain)
    assert responses(dispatcher) == ["utter_ask_problem_identified"]


@pytest.mark.parametrize("slots, missing", [({"identifier": "51937204"}, "postcode"), ({"postcode": "2000"}, "identifier")])
def test_half_an_identity_asks_only_the_other_half(domain, slots, missing):
    dispatcher, events = run(ActionIdentify(), make_tracker("mijn klantnummer is 51937204", "inform", slots=slots), domain)
    assert slot_events(events)["next_step"] == "identify"
    assert slot_events(events)[missing] is None and responses(dispatcher) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_problem_and_identity_in_one_message_are_solved_at_once(domain, language):
    tracker = make_tracker("waar blijft mijn pakket, klantnummer 48213377 postcode 3511 AB", "order_status",
                           language=language, slots={"identifier": "48213377", "postcode": "3511 AB"})
    dispatcher, events = run(ActionTakeProblem(), tracker, domain)
    slots = slot_events(events)
    assert slots["customer_id"] == "48213377" and slots["next_step"] == "solve"
    assert "utter_identified" in responses(dispatcher)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_complex_case_asks_identity_once_and_says_why(domain, language):
    tracker = make_tracker("ik ben twee keer afgeschreven", "billing_dispute", language=language)
    _, events = run(ActionTakeProblem(), tracker, domain)
    assert slot_events(events)["next_step"] == "identify"
    asked, _ = run(ActionAskIdentifier(), make_tracker(slots={"problem_intent": "billing_dispute"}, language=language), domain)
    assert responses(asked) == ["utter_ask_identifier_before_handoff"]
    plain, _ = run(ActionAskIdentifier(), make_tracker(slots={"problem_intent": "order_status"}, language=language), domain)
    assert responses(plain) == ["utter_ask_identifier"]


def test_a_complex_case_goes_to_a_person_when_the_customer_cannot_identify(domain):
    tracker = make_tracker("weet ik niet uit mijn hoofd", "deny", slots={"problem_intent": "billing_dispute"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier("weet ik niet uit mijn hoofd", dispatcher, tracker, domain)
    assert result["identification_failed"] is True and result["handoff_reason"] == "complexity"
    assert responses(dispatcher) == []  # no "that is not a customer number": the handoff says what happens
    _, events = run(ActionSolveProblem(), make_tracker(slots={"problem_intent": "billing_dispute"}), domain)
    assert slot_events(events)["handoff_reason"] == "complexity"


# -- follow-ups ------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_how_long_after_the_outage_notice_is_about_the_outage(domain, language):
    tracker = make_tracker("hoe lang gaat dat nog duren?", "ask_when", language=language,
                           slots={**LOTTE, "last_topic": "report_outage", "topic_facts": {"postcode": "3581 KP"}})
    dispatcher, events = run(ActionFollowUp(), tracker, domain)
    assert responses(dispatcher) == ["utter_follow_up_report_outage"]
    assert dispatcher.messages[0]["fix_time"]
    assert slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language", LANGUAGES)
def test_still_not_working_twice_goes_to_a_person(domain, language):
    slots = {**LOTTE, "last_topic": "report_outage", "topic_facts": {"postcode": "3581 KP"}}
    dispatcher, events = run(ActionFollowUp(), make_tracker("werkt nog steeds niet", "not_solved", language=language,
                                                             slots=slots), domain)
    assert responses(dispatcher) == ["utter_follow_up_outage_not_solved"]
    slots["bot_attempts"] = slot_events(events)["bot_attempts"]
    dispatcher, events = run(ActionFollowUp(), make_tracker("nog steeds niks", "not_solved", language=language,
                                                             slots=slots), domain)
    assert responses(dispatcher) == [] and slot_events(events)["next_step"] == "handoff"
    assert slot_events(events)["problem_intent"] == "report_outage"


@pytest.mark.parametrize("language", LANGUAGES)
def test_when_is_the_money_there_after_a_refund(domain, language):
    facts = {"reference": "RF-1", "order_number": "2024097710", "amount_cents": 4999, "due_on": "2099-01-05"}
    tracker = make_tracker("when will the money be in my account?", "ask_when", language=language,
                           slots={**SANNE, "last_topic": "request_refund", "topic_facts": facts})
    dispatcher, _ = run(ActionFollowUp(), tracker, domain)
    assert responses(dispatcher) == ["utter_follow_up_request_refund"]
    assert dispatcher.messages[0]["reference"] == "RF-1" and "49" in dispatcher.messages[0]["amount"]


OUTAGE_IN_HAND = {**LOTTE, "last_topic": "report_outage", "topic_facts": {"postcode": "3581 KP"}}


@pytest.mark.parametrize("language, text", [("nl", "en wanneer doet ie het weer dan?"), ("en", "when does it come back on?")])
def test_a_follow_up_read_as_out_of_scope_is_answered_about_the_topic_in_hand(domain, language, text):
    # "when does the new one arrive?" after a replacement: out of scope 0.59, ask_when 0.35.
    ranking = [{"name": "out_of_scope", "confidence": 0.59}, {"name": "ask_when", "confidence": 0.35},
               {"name": "order_status", "confidence": 0.02}]
    tracker = make_tracker(text, "out_of_scope", language=language, slots=OUTAGE_IN_HAND, ranking=ranking)
    dispatcher, events = run(ActionOutOfScope(), tracker, domain)
    assert responses(dispatcher) == ["utter_follow_up_report_outage"] and dispatcher.messages[0]["fix_time"]
    assert slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("slots, ranking, nonsense, expected", [
    ({}, [{"name": "out_of_scope", "confidence": 0.59}, {"name": "ask_when", "confidence": 0.35}], False,
     "utter_out_of_scope"),  # no topic in hand
    (OUTAGE_IN_HAND, [{"name": "out_of_scope", "confidence": 0.75}, {"name": "ask_when", "confidence": 0.2}], False,
     "utter_out_of_scope"),  # a follow-up only by a long way
    (OUTAGE_IN_HAND, [{"name": "out_of_scope", "confidence": 0.6}, {"name": "order_status", "confidence": 0.35},
                      {"name": "ask_when", "confidence": 0.05}], False, "utter_out_of_scope"),  # another reading first
    (OUTAGE_IN_HAND, [{"name": "out_of_scope", "confidence": 0.6}, {"name": "ask_when", "confidence": 0.4}], True,
     "utter_nonsense"),  # gibberish is no follow-up
    ({"last_topic": "report_outage"}, [{"name": "out_of_scope", "confidence": 0.6}, {"name": "ask_when", "confidence": 0.4}],
     False, "utter_out_of_scope"),  # not identified: nothing to look up
])
def test_out_of_scope_stays_so_unless_it_is_next_most_likely_a_follow_up(domain, language, slots, ranking, nonsense,
                                                                          expected):
    tracker = make_tracker("will it snow tomorrow", "out_of_scope", language=language, slots=slots, ranking=ranking)
    tracker.latest_message["nonsense"] = nonsense
    dispatcher, events = run(ActionOutOfScope(), tracker, domain)
    assert responses(dispatcher) == [expected] and slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language, text", [("nl", "en hoe lang duurt die storing nog?"),
                                            ("en", "and how long will the outage last?")])
def test_a_follow_up_that_names_the_outage_told_earlier_is_about_the_outage(domain, language, text):
    # After the outage notice a replacement was sent; the customer then asks about the outage.
    slots = {**LOTTE, "postcode": "3581 KP", "outage_notified": True, "last_topic": "defective_product",
             "topic_facts": {"reference": "RV-1", "product": "Sitecom router"}}
    dispatcher, events = run(ActionFollowUp(), make_tracker(text, "ask_when", language=language, slots=slots), domain)
    assert responses(dispatcher) == ["utter_follow_up_report_outage"] and dispatcher.messages[0]["fix_time"]
    assert slot_events(events)["last_topic"] == "report_outage"  # the next "and when?" is about it too
    slots["outage_notified"] = False  # never told: the replacement stays the topic
    dispatcher, _ = run(ActionFollowUp(), make_tracker(text, "ask_when", language=language, slots=slots), domain)
    assert responses(dispatcher) != ["utter_follow_up_report_outage"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_follow_up_without_a_topic_asks_once(domain, language):
    dispatcher, events = run(ActionFollowUp(), make_tracker("hoe lang nog", "ask_when", language=language), domain)
    assert responses(dispatcher) == ["utter_follow_up_no_topic"] and slot_events(events)["follow_up_asked"] is True
    dispatcher, events = run(ActionFollowUp(), make_tracker("hoe lang nog", "ask_when", language=language,
                                                             slots={"follow_up_asked": True}), domain)
    assert responses(dispatcher) == [] and slot_events(events)["next_step"] == "handoff"


def test_a_repeated_outage_report_gets_the_next_step(domain):
    slots = {**SANNE, "last_topic": "report_outage", "topic_facts": {"postcode": "3511 AB", "restart_advised": True},
             "bot_attempts": ["report_outage:no known outage, restart advised"]}
    dispatcher, events = run(ActionTakeProblem(), make_tracker("mijn internet doet het nog steeds niet", "report_outage",
                                                                slots=slots), domain)
    assert "utter_no_outage_restart" not in responses(dispatcher)
    assert slot_events(events)["next_step"] == "handoff"


# -- while waiting for a person --------------------------------------------------------------
def waiting_tracker(text, slots=None, entities=None):
    tracker = make_tracker(text, "nlu_fallback", slots={"handoff_case_id": "c_1", "handoff_reason": "complexity",
                                                         **(slots or {})}, entities=entities)
    tracker._paused = True
    return tracker


def test_the_first_message_while_waiting_is_acknowledged_then_quiet(domain, monkeypatch):
    monkeypatch.setenv("HANDOFF_URL", "http://127.0.0.1:9")  # nothing listens: the plain acknowledgement
    dispatcher, events = run(ActionObserveTurn(), waiting_tracker("hallo? is daar iemand?"), domain)
    assert responses(dispatcher) == ["utter_waiting_ack"]
    acked = slot_events(events)["waiting_ack_at"]
    dispatcher, events = run(ActionObserveTurn(), waiting_tracker("hallo??", {"waiting_ack_at": acked}), domain)
    assert responses(dispatcher) == [] and "waiting_ack_at" not in slot_events(events)
    dispatcher, _ = run(ActionObserveTurn(), waiting_tracker("hallo??", {"waiting_ack_at": acked - 3600}), domain)
    assert responses(dispatcher) == ["utter_waiting_ack"]


def test_nothing_is_said_once_an_agent_owns_the_conversation(domain):
    dispatcher, events = run(ActionObserveTurn(), waiting_tracker("60418825 SW1A 1AA", {"agent_name": "Eva"},
                                                                  [entity("customer_number", "60418825")]), domain)
    assert responses(dispatcher) == [] and "customer_id" not in slot_events(events)


def test_identity_given_while_waiting_is_verified(domain, monkeypatch):
    monkeypatch.setenv("HANDOFF_URL", "http://127.0.0.1:9")
    # The observer runs after the slot mappings: this message's details are already slots.
    tracker = waiting_tracker("60418825 SW1A 1AA", {"waiting_ack_at": time.time(), "identifier": "60418825",
                                                    "postcode": "SW1A 1AA"},
                              [entity("customer_number", "60418825"), entity("postcode", "SW1A 1AA")])
    dispatcher, events = run(ActionObserveTurn(), tracker, domain)
    assert slot_events(events)["customer_id"] == "60418825"
    assert responses(dispatcher) == ["utter_identified"]
    half = waiting_tracker("60418825", {"waiting_ack_at": time.time(), "identifier": "60418825"},
                           [entity("customer_number", "60418825")])
    dispatcher, events = run(ActionObserveTurn(), half, domain)
    assert responses(dispatcher) == ["utter_ask_postcode"] and slot_events(events)["identifier"] == "60418825"


# -- small things ----------------------------------------------------------------------------
def test_ok_is_acknowledged_once_then_quiet(domain):
    dispatcher, _ = run(ActionAcknowledge(), make_tracker("ok", "affirm"), domain)
    assert responses(dispatcher) == ["utter_acknowledge"]
    again = make_tracker("ok", "affirm", events=[{"event": "bot", "text": "Prima.",
                                                   "metadata": {"utter_action": "utter_acknowledge"}}])
    dispatcher, _ = run(ActionAcknowledge(), again, domain)
    assert responses(dispatcher) == []


@pytest.mark.parametrize("text, field", [("kan je ook mijn emailadres aanpassen?", "email"),
                                         ("can you change my phone number as well", "phone")])
def test_the_detail_named_in_the_question_is_used(text, field):
    tracker = make_tracker(text, "change_contact_details", slots={"problem_description": "waar is mijn pakket"})
    assert infer_contact_field(tracker) == field


@pytest.mark.parametrize("intent, confidence, entities, expected", [
    ("greet", 1.0, [entity("customer_number", "39481726")], True),
    ("nlu_fallback", 0.5, [entity("postcode", "3581 KP")], True),
    ("thank", 0.99, [entity("email", "a@b.nl")], True),
    ("report_outage", 0.99, [entity("customer_number", "39481726")], False),
    ("greet", 1.0, [entity("order_number", "2024118832")], False),
    ("ask_when", 0.6, [entity("postcode", "3581 KP")], False),
    # "I have a question about my order, klantnummer 37710254 postcode 9711 LM" read as cancel_order:
    # a guess is not acted on; the customer is identified and asked what it is about.
    ("cancel_order", 0.83, [entity("customer_number", "37710254")], True),
    ("cancel_order", 0.83, [entity("order_number", "2024118832")], False),
])
def test_identity_details_make_small_talk_and_guesses_an_inform(intent, confidence, entities, expected):
    assert identity_intent({"name": intent, "confidence": confidence}, entities) is expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_second_question_about_opening_hours_gets_the_hours_without_the_preamble(domain, language):
    slots = {"last_topic": "opening_hours", "topic_facts": {"answered": True}, "bot_attempts": ["opening_hours:answered"]}
    dispatcher, events = run(ActionTakeProblem(), make_tracker("en op zondag?", "opening_hours", language=language,
                                                                slots=slots), domain)
    assert responses(dispatcher) == ["utter_opening_hours"] and slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language, text", [
    ("nl", "kunt u mijn adres wijzigen naar Veldstraat 10, 9000 Gent"),
    ("en", "please change my address to Veldstraat 10, 9000 Gent"),
])
def test_a_new_address_in_the_request_is_used_not_asked(domain, language, text):
    from actions.solvers import solve_change_contact_details

    tracker = make_tracker(text, "change_contact_details", language=language,
                           slots={**SANNE, "customer_id": "45678912", "problem_intent": "change_contact_details"})
    dispatcher = CollectingDispatcher()
    outcome = asyncio.run(solve_change_contact_details(dispatcher, tracker))
    assert outcome.next_step is None and outcome.result == "address changed"
    assert responses(dispatcher) == ["utter_contact_updated_address"]
    assert dispatcher.messages[0]["value"] == "Veldstraat 10, 9000 Gent"


@pytest.mark.parametrize("language, text", [("nl", "ik heb geen internet"), ("en", "my internet is down")])
def test_a_tv_outage_does_not_explain_an_internet_problem(domain, language, text):
    from actions.solvers import solve_report_outage

    jan = {**SANNE, "customer_id": "45678912", "customer_name": "Jan Peeters", "problem_description": text}
    dispatcher = CollectingDispatcher()
    outcome = asyncio.run(solve_report_outage(dispatcher, make_tracker(text, "report_outage", language=language,
                                                                        slots=jan)))
    # The customer was just told about the tv outage nearby: not "no outage at your address".
    assert responses(dispatcher) == ["utter_other_service_outage_restart"] and outcome.facts["restart_advised"]
    assert dispatcher.messages[0]["outage_service"] == ("tv" if language == "nl" else "TV")
    assert dispatcher.messages[0]["service"] == ("internet" if language == "nl" else "the internet")
    assert outcome.facts["other_outage_service"] == "tv"
    tv = {**jan, "problem_description": "geen tv beeld" if language == "nl" else "no tv channels"}
    dispatcher = CollectingDispatcher()
    asyncio.run(solve_report_outage(dispatcher, make_tracker("...", "report_outage", language=language, slots=tv)))
    assert "utter_outage_confirmed" in responses(dispatcher)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_when_about_an_outage_of_another_service_gives_its_fix_time_not_a_denial(domain, language):
    from actions.follow_up import outage

    jan = {**SANNE, "customer_id": "45678912", "customer_name": "Jan Peeters"}
    facts = {"postcode": "9000", "restart_advised": True, "other_outage_service": "tv"}
    dispatcher = CollectingDispatcher()
    answer = asyncio.run(outage(dispatcher, make_tracker("wanneer is dat opgelost", "ask_when", language=language,
                                                         slots=jan), "ask_when", facts))
    assert responses(dispatcher) == ["utter_follow_up_other_service_outage"] and answer.handoff_reason is None
    assert dispatcher.messages[0]["fix_time"]


@pytest.mark.parametrize("text, postcode", [("klantnummer 51937204 postcode 2000", "2000"), ("55102938, 1000", "1000"),
                                            ("Mijn klantnummer is 51937204 en de postcode 2000.", "2000"),
                                            ("klant sinds 2015, nummer 51937204", None), ("51937204", None)])
def test_a_belgian_postcode_is_taken_where_the_customer_marks_it(text, postcode):
    from actions.identifier_parsing import belgian_postcode_in

    assert belgian_postcode_in(text) == postcode


@pytest.mark.parametrize("text, country, stored", [("0475 11 22 33", "BE", "+32475112233"),
                                                   ("06 12345678", "NL", "+31612345678"),
                                                   ("+44 7700 900123", "GB", "+447700900123"),
                                                   ("+32 475 11 22 33", "NL", "+32475112233"),
                                                   ("07700 900123", "GB", "+447700900123")])
def test_a_national_phone_number_takes_the_customers_country(text, country, stored):
    from actions.contact_details import normalise_contact_value

    assert normalise_contact_value("phone", text, country) == stored


@pytest.mark.parametrize("text, stored", [
    ("Nieuwe adres is Kerkstraat 5, 3011 AB Rotterdam", "Kerkstraat 5, 3011 AB Rotterdam"),
    ("mijn adres wordt nu Meir 10 bus 3, 2000 Antwerpen", "Meir 10 bus 3, 2000 Antwerpen"),
    ("my new address is 12 High Street, LS1 4AP Leeds", "12 High Street, LS1 4AP Leeds"),
    ("new address: 4 Station Road, Cardiff CF10 1EP", "4 Station Road, Cardiff CF10 1EP"),
    ("3011 AB", None),
])
def test_a_new_address_is_stored_without_the_words_that_announce_it(text, stored):
    from actions.contact_details import normalise_contact_value

    assert normalise_contact_value("address", text) == stored


@pytest.mark.parametrize("text, intent", [("ok", "affirm"), ("👍", "nlu_fallback"), ("dank je", "thank")])
def test_ok_while_the_bot_asks_for_the_number_is_no_wrong_answer(domain, text, intent):
    tracker = make_tracker(text, intent, slots={"problem_intent": "order_status"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, dispatcher, tracker, domain)
    assert result == {"identifier": None} and responses(dispatcher) == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("slot, text, intent", [
    ("postcode", "waar blijft mijn pakket", "order_status"),
    ("identifier", "my internet keeps dropping out", "report_outage"),
])
def test_the_problem_told_instead_of_an_answer_is_kept_not_refused(domain, language, slot, text, intent):
    tracker = make_tracker(text, intent, language=language, slots={"identifier": "51937204"} if slot == "postcode" else {})
    dispatcher = CollectingDispatcher()
    validate = getattr(ValidateIdentificationForm(), f"validate_{slot}")
    result = validate(text, dispatcher, tracker, domain)
    assert result == {slot: None, "problem_intent": intent, "suggested_intent": None, "problem_description": text}
    assert responses(dispatcher) == [f"utter_understood_{intent}"]  # not "that is no postcode"
    assert "identification_attempts" not in result


def test_the_same_problem_told_again_while_asked_is_not_confirmed_twice(domain):
    tracker = make_tracker("waar blijft mijn pakket nou", "order_status",
                           slots={"problem_intent": "order_status", "problem_description": "mijn pakket is niet gekomen"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode("waar blijft mijn pakket nou", dispatcher, tracker, domain)
    assert result == {"postcode": None} and responses(dispatcher) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_question_asked_again_is_worded_anew(domain, language):
    started = [{"event": "active_loop", "name": "identification_form"}]
    asked = started + [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_ask_postcode"}}]
    for action, question in ((ActionAskPostcode(), "utter_ask_postcode"), (ActionAskIdentifier(), "utter_ask_identifier")):
        first, _ = run(action, make_tracker("ok", "affirm", language=language, events=started), domain)
        assert responses(first) == [question]
        earlier = [{**e, "metadata": {"utter_action": question}} if e["event"] == "bot" else e for e in asked]
        again, _ = run(action, make_tracker("ok", "affirm", language=language, events=earlier), domain)
        assert responses(again) == [f"{question}_again"]
        # A second "ok": the two wordings take turns, never the same sentence twice in a row.
        twice = earlier + [{"event": "bot", "text": "...", "metadata": {"utter_action": f"{question}_again"}}]
        third, _ = run(action, make_tracker("ok", "affirm", language=language, events=twice), domain)
        assert responses(third) == [question]
    # Asked in an earlier run of the form (an earlier case): the plain question.
    later = asked + [{"event": "active_loop", "name": None}] + started
    plain, _ = run(ActionAskPostcode(), make_tracker("x", "inform", language=language, events=later), domain)
    assert responses(plain) == ["utter_ask_postcode"]
    # "Try once more, starting with your customer number" already asked it.
    mismatch = make_tracker("12345678 1234 AB", "inform", language=language, events=started,
                            events_after=[{"event": "bot", "text": "...",
                                           "metadata": {"utter_action": "utter_identification_mismatch"}}])
    silent, _ = run(ActionAskIdentifier(), mismatch, domain)
    assert responses(silent) == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("text", ["ik weet mijn klantnummer niet", "geen idee, ben het kwijt", "I don't know my number",
                                  "no idea sorry", "i dont remember my customer number"])
def test_not_knowing_the_number_gets_the_other_ways_once(domain, language, text):
    tracker = make_tracker(text, "inform", language=language, slots={"problem_intent": "order_status"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, dispatcher, tracker, domain)
    assert result == {"identifier": None} and responses(dispatcher) == ["utter_identifier_alternatives"]
    # The form's question is not said again right after it.
    said = make_tracker(text, "inform", language=language, events_after=[
        {"event": "bot", "text": "...", "metadata": {"utter_action": "utter_identifier_alternatives"}}])
    asked, _ = run(ActionAskIdentifier(), said, domain)
    assert responses(asked) == []
    # Said once: the second "I don't know" is a wrong answer like any other.
    tracker.events.insert(0, {"event": "bot", "text": "...", "metadata": {"utter_action": "utter_identifier_alternatives"}})
    again = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, again, tracker, domain)
    assert result["identification_attempts"] == 1.0 and responses(again) == ["utter_invalid_identifier"]


@pytest.mark.parametrize("intent", ["ask_when", "ask_faster", "not_solved"])
def test_a_question_about_the_case_while_identity_is_asked_is_no_wrong_answer(domain, intent):
    tracker = make_tracker("met welke vervoerder komt ie?", intent, slots={"problem_intent": "order_status"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode("met welke vervoerder komt ie?", dispatcher, tracker, domain)
    assert result == {"postcode": None} and responses(dispatcher) == []


def test_thanks_while_the_new_delivery_day_is_asked_is_no_wrong_answer(domain):
    from actions.order_change import ValidateOrderChangeForm

    tracker = make_tracker("thanks mate", "thank", language="en", slots={"problem_intent": "change_order"})
    dispatcher = CollectingDispatcher()
    result = ValidateOrderChangeForm().validate_order_change("thanks mate", dispatcher, tracker, domain)
    assert result == {"order_change": None} and responses(dispatcher) == []


@pytest.mark.parametrize("intent", ["not_solved", "ask_when"])
def test_before_a_complex_case_anything_but_ok_means_no_identity_and_a_person(domain, intent):
    tracker = make_tracker("heb ik nu niet bij de hand", intent, slots={"problem_intent": "billing_dispute"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier("heb ik nu niet bij de hand", dispatcher, tracker, domain)
    assert result["identification_failed"] is True and result["handoff_reason"] == "complexity"


@pytest.mark.parametrize("language, text", [("nl", "dat is niet acceptabel"), ("en", "thats not acceptable")])
def test_no_that_is_dissatisfaction_goes_to_a_person_not_a_goodbye(domain, language, text, monkeypatch):
    from actions.follow_up import ActionNothingElse

    answered = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_anything_else"}}]
    tracker = make_tracker(text, "deny", language=language, events=answered,
                           slots={**SANNE, "last_topic": "order_status", "topic_facts": {"order_number": "2024118832"}})
    dispatcher, events = run(ActionNothingElse(), tracker, domain)
    slots = slot_events(events)
    assert slots["next_step"] == "handoff" and slots["handoff_reason"] == "frustration"
    assert "utter_goodbye" not in responses(dispatcher)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_to_anything_else_is_a_goodbye_and_a_bare_no_an_acknowledgement(domain, language):
    from actions.follow_up import ActionNothingElse

    answered = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_anything_else"}}]
    tracker = make_tracker("nee dank je", "deny", language=language, events=answered, slots={"last_topic": "order_status"})
    dispatcher, events = run(ActionNothingElse(), tracker, domain)
    assert responses(dispatcher) == ["utter_goodbye"] and slot_events(events)["next_step"] == "done"
    dispatcher, _ = run(ActionNothingElse(), make_tracker("nee", "deny", language=language), domain)
    assert responses(dispatcher) == ["utter_acknowledge"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_opening_hours_asked_beside_a_case_is_answered_and_the_case_goes_on(domain, language):
    tracker = make_tracker("hoe laat zijn jullie open", "opening_hours", language=language,
                           slots={"problem_intent": "cancel_order"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier("hoe laat zijn jullie open", dispatcher, tracker, domain)
    assert result == {"identifier": None} and responses(dispatcher) == ["utter_opening_hours"]


def test_another_problem_must_be_clear_to_replace_the_case_in_hand(domain):
    tracker = make_tracker("wanneer krijg ik antwoord?", "account_access", slots={"problem_intent": "invoice"})
    tracker.latest_message["intent"]["confidence"] = 0.87
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode("wanneer krijg ik antwoord?", dispatcher, tracker, domain)
    assert "problem_intent" not in result and responses(dispatcher) == ["utter_invalid_postcode"]
    tracker.latest_message["intent"]["confidence"] = 0.99
    result = ValidateIdentificationForm().validate_postcode("mijn account is geblokkeerd", CollectingDispatcher(),
                                                            tracker, domain)
    assert result["problem_intent"] == "account_access"


def test_asking_opening_hours_during_identification_ends_the_questions(domain):
    tracker = make_tracker("hoe laat zijn jullie open", "opening_hours", active_loop="identification_form",
                           slots={"problem_intent": "opening_hours"})
    required = asyncio.run(ValidateIdentificationForm().required_slots(["identifier", "postcode"],
                                                                       CollectingDispatcher(), tracker, domain))
    assert required == []


def test_an_emoji_is_an_acknowledgement_not_a_miss(domain):
    from actions.not_understood import ActionHandleMiss

    dispatcher, events = run(ActionHandleMiss(), make_tracker("👍", "nlu_fallback"), domain)
    assert responses(dispatcher) == ["utter_acknowledge"] and "consecutive_misses" not in slot_events(events)


@pytest.mark.parametrize("language", LANGUAGES)
def test_question_marks_alone_ask_what_is_unclear_not_fine(domain, language):
    from actions.not_understood import ActionHandleMiss

    dispatcher, events = run(ActionHandleMiss(), make_tracker("???", "nlu_fallback", language=language), domain)
    assert responses(dispatcher) == ["utter_anything_unclear"] and "consecutive_misses" not in slot_events(events)


@pytest.mark.parametrize("language", LANGUAGES)
def test_how_long_for_an_order_still_being_prepared(domain, language):
    emily = {**SANNE, "customer_id": "60418825", "customer_name": "Emily Clarke", "last_topic": "order_status",
             "topic_facts": {"order_number": "2024121190"}}
    dispatcher, _ = run(ActionFollowUp(), make_tracker("is it on its way?", "ask_when", language=language, slots=emily),
                        domain)
    assert responses(dispatcher) == ["utter_follow_up_order_processing"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind, text", [("ask_when", "waar blijft hij nou"), ("ask_faster", "can it come sooner"),
                                        ("not_solved", "still nothing here")])
def test_an_order_cancelled_meanwhile_is_said_to_be_cancelled_whatever_is_asked(domain, monkeypatch, language, kind,
                                                                                 text):
    monkeypatch.setattr("actions.follow_up.get_async_backend", lambda: AsyncBackend(CancelledThenShipped()))
    asked = {**SANNE, "last_topic": "order_status", "topic_facts": {"order_number": "2024120001"}}
    dispatcher, events = run(ActionFollowUp(), make_tracker(text, kind, language=language, slots=asked), domain)
    assert responses(dispatcher) == ["utter_follow_up_order_cancelled"]
    assert dispatcher.messages[0]["order_number"] == "2024120001"
    assert slot_events(events).get("handoff_reason") is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_nonsense_is_said_to_be_so_and_never_a_case(domain, language):
    from actions.problems import ActionOutOfScope

    tracker = make_tracker("flurb zanq the wibble", "out_of_scope", language=language)
    tracker.latest_message["nonsense"] = True
    dispatcher, events = run(ActionOutOfScope(), tracker, domain)
    assert responses(dispatcher) == ["utter_nonsense"] and slot_events(events)["next_step"] == "done"  # no case, no person
    dispatcher, _ = run(ActionOutOfScope(), make_tracker("will it snow today", "out_of_scope", language=language), domain)
    assert responses(dispatcher) == ["utter_out_of_scope"]


def test_told_a_third_time_the_case_goes_to_a_person_not_the_same_answer(domain):
    pieter = {**SANNE, "customer_id": "51937204", "customer_name": "Pieter Janssens", "last_topic": "order_status",
              "topic_facts": {"order_number": "2024120451"},
              "bot_attempts": ["order_status:order 2024120451 late", "order_status:follow_up_ask_when"]}
    dispatcher, events = run(ActionTakeProblem(), make_tracker("ik heb nog altijd niks gekregen", "order_status",
                                                                slots=pieter), domain)
    assert responses(dispatcher) == [] and slot_events(events)["next_step"] == "handoff"
    other = make_tracker("en bestelling 2024097710?", "order_status", slots=pieter,
                         entities=[entity("order_number", "2024097710")])
    _, events = run(ActionTakeProblem(), other, domain)
    assert slot_events(events)["next_step"] != "handoff"  # another order is a new question


@pytest.mark.parametrize("text", ["51937204, 2000", "Mijn klantnummer is 51937204 en de postcode 2000."])
def test_both_answers_in_one_line_with_a_belgian_postcode(domain, text):
    tracker = make_tracker(text, "inform", slots={"problem_intent": "order_status"})
    # The slot's value is the customer number the entity mapping found, not the whole message.
    result = ValidateIdentificationForm().validate_identifier("51937204", CollectingDispatcher(), tracker, domain)
    assert result == {"identifier": "51937204", "postcode": "2000"}


def test_moving_house_with_the_number_and_current_postcode_identifies(domain):
    text = "ik ben verhuisd, een paar huizen verderop. klantnummer 48213377 postcode 3511 AB"
    tracker = make_tracker(text, "change_contact_details", slots={"identifier": "48213377"},
                           entities=[entity("customer_number", "48213377"), entity("postcode", "3511 AB")])
    dispatcher, events = run(ActionTakeProblem(), tracker, domain)
    assert slot_events(events)["customer_id"] == "48213377" and "utter_identified" in responses(dispatcher)


def test_details_given_before_the_wait_are_not_checked_again_on_every_message(domain, monkeypatch):
    monkeypatch.setenv("HANDOFF_URL", "http://127.0.0.1:9")
    earlier = waiting_tracker("hallo?", {"waiting_ack_at": time.time(), "identifier": "48213377", "postcode": "3511 AB"})
    dispatcher, events = run(ActionObserveTurn(), earlier, domain)
    assert responses(dispatcher) == [] and "customer_id" not in slot_events(events)


@pytest.mark.parametrize("text, phone", [("my number is 07700 900123", "+447700900123"),
                                         ("07700900123 and SW1A 1AA", "+447700900123"),
                                         ("mijn nummer is 06-12345678", "+31612345678"),
                                         ("bel me op 0031 6 12345678", "+31612345678")])
def test_a_british_mobile_written_nationally_identifies_the_customer(text, phone):
    """Eleven digits with the leading 0 can only be British (Dutch and Belgian numbers are ten)."""
    from actions.identifier_parsing import Identifier, parse_identifier

    assert parse_identifier(text) == Identifier("phone", phone)


@pytest.mark.parametrize("language, text", [("nl", "wie wint het songfestival"), ("en", "whats the weather like in paris")])
def test_a_request_that_is_not_ours_while_asked_is_set_aside_not_a_wrong_answer(domain, language, text):
    from actions.contact_details_form import ValidateContactDetailsForm
    from actions.order_change import ValidateOrderChangeForm

    tracker = make_tracker(text, "out_of_scope", language=language, slots={"identifier": "51937204",
                                                                          "problem_intent": "order_status"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode(text, dispatcher, tracker, domain)
    assert result == {"postcode": None} and responses(dispatcher) == ["utter_out_of_scope_aside"]
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, dispatcher, tracker, domain)
    assert result == {"identifier": None} and responses(dispatcher) == ["utter_out_of_scope_aside"]
    tracker.slots.update(contact_field="email", problem_intent="change_contact_details")
    dispatcher = CollectingDispatcher()
    result = ValidateContactDetailsForm().validate_new_contact_value(text, dispatcher, tracker, domain)
    assert result == {"new_contact_value": None} and responses(dispatcher) == ["utter_out_of_scope_aside"]
    tracker.slots.update(problem_intent="change_order")
    dispatcher = CollectingDispatcher()
    result = ValidateOrderChangeForm().validate_order_change(text, dispatcher, tracker, domain)
    assert result == {"order_change": None} and responses(dispatcher) == ["utter_out_of_scope_aside"]
    # Gibberish may be a mistyped answer: refused as one, as before.
    tracker.latest_message["nonsense"] = True
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode("flurb zanq", dispatcher, tracker, domain)
    assert result["identification_attempts"] == 1.0 and responses(dispatcher) == ["utter_invalid_postcode"]


@pytest.mark.parametrize("language, text", [("en", "can you help me in english please"), ("nl", "spreekt u nederlands?")])
def test_a_language_asked_for_is_granted_not_refused(domain, language, text):
    from actions.not_understood import ActionHandleMiss
    from actions.problems import ActionOutOfScope

    requested = {"language": language, "confidence": 1.0, "reliable": True, "words": 5, "requested": True}
    tracker = make_tracker(text, "out_of_scope", language=language, slots={"identifier": "51937204",
                                                                          "problem_intent": "invoice"})
    tracker.latest_message["language_detection"] = requested
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode(text, dispatcher, tracker, domain)
    assert result == {"postcode": None} and responses(dispatcher) == ["utter_language_switched"]
    dispatcher, _ = run(ActionOutOfScope(), tracker, domain)
    assert responses(dispatcher) == ["utter_language_switched"]
    tracker.latest_message["intent"] = {"name": "nlu_fallback", "confidence": 0.5}
    dispatcher, events = run(ActionHandleMiss(), tracker, domain)
    assert responses(dispatcher) == ["utter_language_switched"] and "consecutive_misses" not in slot_events(events)
    # Read as a thank-you, the request is still answered, not passed over as "no answer".
    tracker.latest_message["intent"] = {"name": "thank", "confidence": 0.9}
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode(text, dispatcher, tracker, domain)
    assert responses(dispatcher) == ["utter_language_switched"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_question_marks_after_an_answer_ask_what_is_unclear(domain, language):
    dispatcher, _ = run(ActionAcknowledge(), make_tracker("???", "affirm", language=language), domain)
    assert responses(dispatcher) == ["utter_anything_unclear"]
    dispatcher, _ = run(ActionAcknowledge(), make_tracker("ok", "affirm", language=language), domain)
    assert responses(dispatcher) == ["utter_acknowledge"]


@pytest.mark.parametrize("language, text", [("nl", "nee dat was t"), ("en", "no thats it")])
def test_no_after_the_acknowledgement_is_the_goodbye_not_silence(domain, language, text):
    from actions.follow_up import ActionNothingElse

    acknowledged = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_acknowledge"}}]
    tracker = make_tracker(text, "deny", language=language, events=acknowledged, slots={"last_topic": "order_status"})
    dispatcher, _ = run(ActionNothingElse(), tracker, domain)
    assert responses(dispatcher) == ["utter_goodbye"]


@pytest.mark.parametrize("text", ["!!!!", "😡😡"])
def test_anger_without_words_goes_to_a_person_not_fine(domain, text):
    from actions.not_understood import ActionHandleMiss

    dispatcher, events = run(ActionHandleMiss(), make_tracker(text, "nlu_fallback"), domain)
    slots = slot_events(events)
    assert slots["next_step"] == "handoff" and slots["handoff_reason"] == "frustration"
    assert "utter_acknowledge" not in responses(dispatcher)


@pytest.mark.parametrize("language, text", [("nl", "nee hoor dat was t"), ("en", "no thats all")])
def test_no_to_was_something_unclear_is_the_goodbye_not_a_second_miss(domain, language, text):
    from actions.not_understood import ActionHandleMiss

    asked = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_anything_unclear"}}]
    tracker = make_tracker(text, "deny", language=language, events=asked, slots={"consecutive_misses": 1.0})
    dispatcher, events = run(ActionHandleMiss(), tracker, domain)
    assert responses(dispatcher) == ["utter_goodbye"] and "handoff_reason" not in slot_events(events)


@pytest.mark.parametrize("language, text", [("en", "for the third time this week!!!"), ("nl", "belachelijk dit")])
def test_fed_up_while_identity_is_asked_goes_to_a_person(domain, language, text):
    tracker = make_tracker(text, "out_of_scope", language=language, slots={"problem_intent": "report_outage"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, dispatcher, tracker, domain)
    assert result == {"identifier": None, "identification_failed": True, "handoff_reason": "frustration"}
    assert responses(dispatcher) == []  # not "I can't help with that", not "that is no customer number"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_question_of_fact_while_the_postcode_is_asked_is_answered(domain, language):
    text = "oh wacht, wat is jullie retourbeleid eigenlijk"
    tracker = make_tracker(text, "faq", language=language, slots={"identifier": "48213377",
                                                                 "problem_intent": "defective_product"})
    tracker.latest_message["response_selector"] = {"faq": {"response": {
        "intent_response_key": "faq/return_policy", "confidence": 0.97}}}
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_postcode(text, dispatcher, tracker, domain)
    assert result == {"postcode": None} and responses(dispatcher) == ["utter_faq/return_policy"]
    # Unsure of the article: no answer from it, and no wrong postcode either when it is no postcode.
    tracker.latest_message["response_selector"]["faq"]["response"]["confidence"] = 0.2
    dispatcher = CollectingDispatcher()
    ValidateIdentificationForm().validate_postcode(text, dispatcher, tracker, domain)
    assert "utter_faq/return_policy" not in responses(dispatcher)


def test_flemish_not_at_hand_gets_the_other_ways(domain):
    text = "ik heb mijn klantnummer ni bij"
    tracker = make_tracker(text, "inform", language="nl", slots={"problem_intent": "cancel_order"})
    dispatcher = CollectingDispatcher()
    result = ValidateIdentificationForm().validate_identifier(text, dispatcher, tracker, domain)
    assert result == {"identifier": None} and responses(dispatcher) == ["utter_identifier_alternatives"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_email_that_identified_the_customer_is_not_taken_as_the_new_one(domain, language):
    from actions.contact_details_form import ValidateContactDetailsForm

    text = "ruby.evans@example.co.uk, CF10 1EP"
    verified = [{"event": "slot", "name": "customer_id", "value": "29384756"}]
    tracker = make_tracker(text, "inform", language=language, events_after=verified,
                           slots={"contact_field": "email", "problem_intent": "change_contact_details"})
    result = ValidateContactDetailsForm().validate_new_contact_value(text, CollectingDispatcher(), tracker, domain)
    assert result == {"new_contact_value": None}
    # A later message with the new address is the new one.
    later = make_tracker("new one is ruby.e@example.com", "inform", language=language,
                         slots={"contact_field": "email", "customer_id": "29384756"})
    result = ValidateContactDetailsForm().validate_new_contact_value("ruby.e@example.com", CollectingDispatcher(), later,
                                                                     domain)
    assert result == {"new_contact_value": "ruby.e@example.com"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_money_back_after_a_shipped_order_was_cancelled_waits_for_the_parcel(domain, language):
    facts = {"order_number": "2024121603", "reference": "RT-20261203-0002", "return_label": "RL-RT-20261203-0002",
             "return_by": "2026-12-17", "amount_cents": 8999}
    tracker = make_tracker("when will i get my money back", "ask_when", language=language,
                           slots={**SANNE, "last_topic": "cancel_order", "topic_facts": facts})
    dispatcher, _ = run(ActionFollowUp(), tracker, domain)
    assert responses(dispatcher) == ["utter_follow_up_return_in_progress"]
    sent = dispatcher.messages[0]
    assert sent["return_label"] == "RL-RT-20261203-0002" and sent["return_by"] and "89" in sent["amount"]


# -- a question of fact that points back at the case in hand -------------------------------------
ORDER_IN_HAND = {**SANNE, "last_topic": "order_status", "topic_facts": {"order_number": "2024118832"}}


def question_of_fact(text, language, slots, article="faq/delivery_options"):
    tracker = make_tracker(text, "faq", language=language, slots=slots)
    tracker.latest_message["response_selector"] = {
        "faq": {"response": {"intent_response_key": article, "confidence": 0.9}}}
    return tracker


@pytest.mark.parametrize("language, text", [
    ("nl", "top, en wie bezorgt het?"), ("nl", "met wie komt die?"), ("nl", "wie brengt dat pakket"),
    ("nl", "hoe lang duurt de levering?"),
    ("en", "great, and who's delivering it?"), ("en", "which courier brings that?"),
    ("en", "how long does the delivery take?"),
])
def test_a_question_of_fact_that_points_back_at_the_order_is_about_that_order(domain, language, text):
    # Found in a conversation: "top, en wie bezorgt het?" right after the order's status got the
    # general delivery article (PostNL and bpost, costs, evening delivery) instead of its carrier.
    dispatcher, events = run(ActionAnswerKnowledge(), question_of_fact(text, language, ORDER_IN_HAND), domain)
    assert responses(dispatcher) == ["utter_follow_up_order_status"]
    assert dispatcher.messages[0]["carrier"] == "PostNL" and dispatcher.messages[0]["order_number"] == "2024118832"
    assert slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("text, slots, article", [
    ("hoeveel kost het bezorgen?", ORDER_IN_HAND, "faq/delivery_options"),  # "het" is the article here
    ("how much is delivery on a sunday", ORDER_IN_HAND, "faq/delivery_options"),  # points at nothing
    ("wie bezorgt het?", {}, "faq/delivery_options"),  # no order in hand
    ("wie bezorgt het?", {**SANNE, "last_topic": "report_outage"}, "faq/delivery_options"),  # another topic
    ("can I pay it with paypal?", ORDER_IN_HAND, "faq/payment_methods"),  # another article
    ("wat zijn de bezorgopties?", ORDER_IN_HAND, "faq/delivery_options"),  # the options in general
    ("how long does the delivery usually take?", ORDER_IN_HAND, "faq/delivery_options"),  # what usually happens
    ("what are the delivery times to belgium?", ORDER_IN_HAND, "faq/delivery_options"),  # elsewhere
])
def test_a_question_of_fact_about_nothing_in_hand_gets_the_article(domain, language, text, slots, article):
    dispatcher, events = run(ActionAnswerKnowledge(), question_of_fact(text, language, slots, article), domain)
    assert responses(dispatcher) == [f"utter_{article}"]
    assert slot_events(events)["next_step"] == "done"
    # A case in hand stays the topic, so "and when exactly does it come?" is still about it.
    in_hand = slots.get("last_topic") if slots.get("customer_id") else None
    assert slot_events(events).get("last_topic") == (None if in_hand else article)


@pytest.mark.parametrize("language, text", [("nl", "super bedankt! hoe lang duurt de levering?"),
                                            ("en", "great, how long will the delivery take?")])
def test_a_delivery_question_right_after_a_replacement_is_about_the_replacement(domain, language, text):
    # Found in a conversation: right after "PostNL bezorgt hem maandag", "hoe lang duurt de levering?"
    # got the general delivery article (next working day, costs) instead of that Monday.
    slots = {**LOTTE, "last_topic": "defective_product",
             "topic_facts": {"reference": "RV-20261204-0001", "carrier": "PostNL", "product": "router",
                             "expected_on": "2026-12-07", "pickup_on": "2026-12-07"}}
    dispatcher, events = run(ActionAnswerKnowledge(), question_of_fact(text, language, slots), domain)
    assert responses(dispatcher) == ["utter_follow_up_defective_product"]
    assert dispatcher.messages[0]["reference"] == "RV-20261204-0001"
    assert slot_events(events)["next_step"] == "done"
