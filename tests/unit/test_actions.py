"""Actions with real rasa-sdk trackers and the real domain, in both languages."""

import asyncio
import time

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import AsyncBackend, BackendUnavailable
from actions.escalation import ActionHandoff
from actions.identification import ValidateIdentificationForm
from actions.not_understood import ActionHandleMiss
from actions.problems import ActionSolveProblem, ActionTakeProblem
from actions.session import ActionObserveTurn, ActionSessionStart
from bot.language import get_detector
from tests.unit.conftest import CancelledThenShipped, make_tracker, responses, slot_events

LANGUAGES = ["nl", "en"]


def run(action, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher, events


def detection(text):
    return get_detector().detect(text).as_dict()


# -- the per-turn observer -------------------------------------------------------------------
@pytest.mark.parametrize("text", ["ok", "ja", "thanks", "48213377", "👍"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_short_messages_keep_the_language(domain, text, language):
    tracker = make_tracker(text, "affirm", language=language, detection=detection(text))
    _, events = run(ActionObserveTurn(), tracker, domain)
    assert "language" not in slot_events(events)


@pytest.mark.parametrize("text, current, new", [
    ("sorry, can we continue in English please, my parcel is late", "nl", "en"),
    ("ik wil toch liever in het Nederlands verder als dat kan", "en", "nl"),
])
def test_a_clear_switch_changes_the_language(domain, text, current, new):
    tracker = make_tracker(text, "order_status", language=current, detection=detection(text))
    _, events = run(ActionObserveTurn(), tracker, domain)
    assert slot_events(events)["language"] == new


def test_first_message_takes_the_page_language(domain):
    tracker = make_tracker("hi", "greet", language=None, detection=detection("hi"),
                           slots={"session_started_metadata": {"locale": "nl-BE"}})
    _, events = run(ActionObserveTurn(), tracker, domain)
    assert slot_events(events)["language"] == "nl"


def test_informal_dutch_is_followed(domain):
    tracker = make_tracker("kun je me helpen met mijn pakket", "order_status",
                           detection=detection("kun je me helpen met mijn pakket"))
    _, events = run(ActionObserveTurn(), tracker, domain)
    assert slot_events(events)["register"] == "je"


@pytest.mark.parametrize("intent, reset", [("order_status", True), ("nlu_fallback", False), ("deny", False)])
def test_misses_reset_only_when_understood(domain, intent, reset):
    tracker = make_tracker("iets", intent, slots={"consecutive_misses": 1.0})
    _, events = run(ActionObserveTurn(), tracker, domain)
    assert (slot_events(events).get("consecutive_misses") == 0.0) is reset


# -- session start ---------------------------------------------------------------------------
def test_identity_and_language_carry_over_to_a_new_session(domain):
    slots = {"customer_id": "48213377", "customer_name": "Sanne de Vries", "identity_verified_by": "customer_number+postcode",
             "identity_verified_at": time.time() - 3600, "problem_description": "oud probleem", "language": "en"}
    _, events = run(ActionSessionStart(), make_tracker(slots=slots), domain)
    carried = slot_events(events)
    assert carried["customer_id"] == "48213377" and carried["language"] == "en"
    assert "problem_description" not in carried


def test_identity_expires_after_the_retention_period(domain):
    slots = {"customer_id": "48213377", "identity_verified_at": time.time() - 400 * 86400}
    _, events = run(ActionSessionStart(), make_tracker(slots=slots), domain)
    assert "customer_id" not in slot_events(events)


# -- taking the problem ----------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_problem_is_kept_verbatim_and_confirmed_then_identification(domain, language):
    text = "mijn föhn is na 2 dagen al kapot!!" if language == "nl" else "my hairdryer broke after 2 days!!"
    dispatcher, events = run(ActionTakeProblem(), make_tracker(text, "defective_product", language=language), domain)
    slots = slot_events(events)
    assert slots["problem_description"] == text
    assert slots["next_step"] == "identify"
    assert responses(dispatcher) == ["utter_understood_defective_product"]


def test_first_description_is_not_overwritten(domain):
    tracker = make_tracker("ook kan ik niet inloggen", "account_access", slots={"problem_description": "eerste verhaal"})
    _, events = run(ActionTakeProblem(), tracker, domain)
    assert "problem_description" not in slot_events(events)


def test_identified_customer_is_not_asked_again(domain):
    tracker = make_tracker("waar is mijn pakket", "order_status", slots={"customer_id": "48213377"})
    _, events = run(ActionTakeProblem(), tracker, domain)
    assert slot_events(events)["next_step"] == "solve"


def test_facts_need_no_identity(domain):
    _, events = run(ActionTakeProblem(), make_tracker("wanneer zijn jullie open", "opening_hours"), domain)
    assert slot_events(events)["next_step"] == "solve"


@pytest.mark.parametrize("case", ["complaint", "privacy_request"])
def test_complex_cases_go_to_a_person(domain, case):
    known = {"customer_id": "48213377", "customer_name": "Sanne de Vries"}
    _, events = run(ActionTakeProblem(), make_tracker("...", case, slots=known), domain)
    assert slot_events(events)["next_step"] == "handoff"
    assert slot_events(events)["handoff_reason"] == "complexity"
    # An unknown customer is asked once who they are first (tests/unit/test_following.py).
    _, events = run(ActionTakeProblem(), make_tracker("...", case), domain)
    assert slot_events(events)["next_step"] == "identify"


def test_disclosure_comes_first_when_the_first_message_is_a_problem(domain):
    tracker = make_tracker("waar is mijn pakket", "order_status", slots={"disclosed": False})
    dispatcher, events = run(ActionTakeProblem(), tracker, domain)
    assert responses(dispatcher)[0] == "utter_disclosure"
    assert slot_events(events)["disclosed"] is True


def test_yes_to_the_best_guess_keeps_the_customers_own_words(domain):
    tracker = make_tracker("/affirm", "affirm", slots={"suggested_intent": "order_status", "missed_text": "waar blijft mn spul"})
    _, events = run(ActionTakeProblem(), tracker, domain)
    slots = slot_events(events)
    assert slots["problem_intent"] == "order_status"
    assert slots["problem_description"] == "waar blijft mn spul"


# -- identification --------------------------------------------------------------------------
def validate(domain, text, slots, requested="postcode"):
    tracker = make_tracker(text, "inform", slots={**slots, "requested_slot": requested}, active_loop="identification_form",
                           events_after=[{"event": "slot", "name": k, "value": v} for k, v in slots.items()])
    return run(ValidateIdentificationForm(), tracker, domain)


def test_identifier_and_postcode_verify_the_customer(domain):
    dispatcher, events = validate(domain, "3511 ab", {"identifier": "48213377", "postcode": "3511 ab"})
    slots = slot_events(events)
    assert slots["customer_id"] == "48213377"
    assert slots["identity_verified_by"] == "customer_number+postcode"
    assert "utter_identified" in responses(dispatcher)


def test_email_and_belgian_postcode_verify_the_customer(domain):
    _, events = validate(domain, "2000", {"identifier": "Pieter.Janssens@example.be", "postcode": "mijn postcode is 2000"})
    assert slot_events(events)["customer_id"] == "51937204"


def test_wrong_postcode_once_asks_again_without_saying_which_was_wrong(domain):
    dispatcher, events = validate(domain, "9999 ZZ", {"identifier": "48213377", "postcode": "9999 ZZ"})
    slots = slot_events(events)
    assert slots["identifier"] is None and slots["postcode"] is None
    assert slots["identification_failed"] is False
    assert responses(dispatcher) == ["utter_identification_mismatch"]


def test_second_failure_goes_to_a_person(domain):
    dispatcher, events = validate(domain, "9999 ZZ",
                                  {"identifier": "48213377", "postcode": "9999 ZZ", "identification_attempts": 1.0})
    slots = slot_events(events)
    assert slots["identification_failed"] is True
    assert slots["handoff_reason"] == "identification_failed"
    assert responses(dispatcher) == []


def test_an_answer_without_an_identifier_counts_as_an_attempt(domain):
    dispatcher, events = validate(domain, "mijn naam is Sanne", {"identifier": "mijn naam is Sanne"}, requested="identifier")
    assert slot_events(events)["identification_attempts"] == 1.0
    assert responses(dispatcher) == ["utter_invalid_identifier"]


def test_backend_down_during_identification(domain, monkeypatch):
    class Down:
        def verify(self, *_):
            raise BackendUnavailable("timeout")

        outages_at = verify  # read while the identity is checked
    monkeypatch.setattr("actions.identification.get_async_backend", lambda: AsyncBackend(Down()))
    _, events = validate(domain, "3511 AB", {"identifier": "48213377", "postcode": "3511 AB"})
    assert slot_events(events)["handoff_reason"] == "backend_failure"


def test_nothing_is_asked_once_identified(domain):
    form = ValidateIdentificationForm()
    tracker = make_tracker(slots={"customer_id": "48213377"})
    assert asyncio.run(form.required_slots(["identifier", "postcode"], CollectingDispatcher(), tracker, domain)) == []


# -- solving ---------------------------------------------------------------------------------
def test_order_status_of_the_customers_open_order(domain):
    tracker = make_tracker(slots={"customer_id": "48213377", "problem_intent": "order_status"})
    dispatcher, events = run(ActionSolveProblem(), tracker, domain)
    assert responses(dispatcher) == ["utter_order_shipped", "utter_anything_else"]
    assert dispatcher.messages[0]["tracking"] == "3SHLDR0012345"
    assert slot_events(events)["bot_attempts"] == ["order_status:order 2024118832 shipped"]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_cancelled_order_is_told_as_cancelled_and_not_taken_for_the_open_one(domain, monkeypatch, language):
    monkeypatch.setattr("actions.solvers.get_async_backend", lambda: AsyncBackend(CancelledThenShipped()))
    slots = {"customer_id": "48213377", "problem_intent": "order_status", "language": language}
    # Which order? The one still to come, not the newer cancelled one.
    dispatcher, _ = run(ActionSolveProblem(), make_tracker(slots=slots), domain)
    assert responses(dispatcher)[0] == "utter_order_shipped"
    # The cancelled one, asked by its number: its status, no apology and no person.
    dispatcher, events = run(ActionSolveProblem(), make_tracker(slots={**slots, "order_number": "2024120001"}), domain)
    assert responses(dispatcher) == ["utter_order_cancelled", "utter_anything_else"]
    assert dispatcher.messages[0]["order_items"] == "waterkoker"
    assert slot_events(events).get("handoff_reason") is None


def test_someone_elses_order_number_is_refused_like_an_unknown_one(domain):
    replies = []
    for number in ("2024120451", "1999999999"):  # Pieter's order, and no order at all
        tracker = make_tracker(slots={"customer_id": "48213377", "problem_intent": "order_status", "order_number": number})
        dispatcher, _ = run(ActionSolveProblem(), tracker, domain)
        replies.append([(m["response"], {k: v for k, v in m.items() if k == "order_number"}) for m in dispatcher.messages][0][0])
    assert replies == ["utter_order_not_found", "utter_order_not_found"]


def test_locked_account_is_unlocked_and_reset_link_sent(domain):
    tracker = make_tracker(slots={"customer_id": "72055139", "problem_intent": "account_access"})
    dispatcher, _ = run(ActionSolveProblem(), tracker, domain)
    assert responses(dispatcher)[0] == "utter_account_unlocked"
    assert dispatcher.messages[0]["masked_email"] == "a***i@example.nl"


def test_a_billing_dispute_is_tried_first_then_goes_to_a_person(domain):
    # A known customer: the bot looks for a double charge first (actions/cases.py), so it solves.
    known = {"customer_id": "48213377", "customer_name": "Sanne de Vries"}
    _, events = run(ActionTakeProblem(), make_tracker("twee keer afgeschreven", "billing_dispute", slots=known), domain)
    assert slot_events(events)["next_step"] == "solve"
    tracker = make_tracker("mijn factuur is te hoog", "billing_dispute",
                           slots={**known, "problem_intent": "billing_dispute"})
    _, events = run(ActionSolveProblem(), tracker, domain)
    assert slot_events(events)["next_step"] == "handoff" and slot_events(events)["handoff_reason"] == "complexity"


def test_case_without_a_solver_goes_to_a_person_with_the_attempt(domain, monkeypatch):
    from actions import cases
    monkeypatch.delitem(cases.CASE_SOLVERS, "defective_product")
    tracker = make_tracker(slots={"customer_id": "48213377", "problem_intent": "defective_product"})
    _, events = run(ActionSolveProblem(), tracker, domain)
    slots = slot_events(events)
    assert slots["next_step"] == "handoff" and slots["handoff_reason"] == "no_automation"


def test_backend_failure_while_solving_apologises_once_and_hands_over(domain, monkeypatch):
    async def down(*_):
        raise BackendUnavailable("timeout")
    monkeypatch.setitem(__import__("actions.cases", fromlist=["CASE_SOLVERS"]).CASE_SOLVERS, "order_status", down)
    tracker = make_tracker(slots={"customer_id": "48213377", "problem_intent": "order_status"})
    dispatcher, events = run(ActionSolveProblem(), tracker, domain)
    assert responses(dispatcher) == ["utter_backend_unavailable"]
    assert slot_events(events)["handoff_reason"] == "backend_failure"


# -- misunderstanding ------------------------------------------------------------------------
def test_first_miss_names_the_best_guess(domain):
    ranking = [{"name": "nlu_fallback", "confidence": 0.55}, {"name": "order_status", "confidence": 0.4}]
    dispatcher, events = run(ActionHandleMiss(), make_tracker("waar blijft mn spul", "nlu_fallback", ranking=ranking), domain)
    assert responses(dispatcher) == ["utter_did_you_mean_order_status"]
    assert slot_events(events)["consecutive_misses"] == 1.0
    assert slot_events(events)["missed_text"] == "waar blijft mn spul"


def test_second_miss_goes_to_a_person(domain):
    tracker = make_tracker("blabla", "nlu_fallback", slots={"consecutive_misses": 1.0})
    dispatcher, events = run(ActionHandleMiss(), tracker, domain)
    assert slot_events(events)["next_step"] == "handoff"
    assert slot_events(events)["handoff_reason"] == "second_miss"
    assert responses(dispatcher) == []


def test_unsupported_language_is_said_not_counted(domain):
    text = "Bonjour, je voudrais savoir où est ma commande s'il vous plaît"
    dispatcher, events = run(ActionHandleMiss(), make_tracker(text, "nlu_fallback", detection=detection(text)), domain)
    assert responses(dispatcher) == ["utter_unsupported_language"]
    assert "consecutive_misses" not in slot_events(events)


# -- handoff ---------------------------------------------------------------------------------
@pytest.fixture
def handoff_service(monkeypatch):
    """Stands in for the handoff service's answer; the real one is used end to end."""
    sent = []
    answer = {"case_id": "c_1", "status": "queued", "position": 2, "estimate_minutes": 12}

    async def open_case(packet):
        sent.append(packet)
        return answer
    monkeypatch.setattr("actions.escalation.open_case", open_case)
    return sent, answer


@pytest.mark.parametrize("language", LANGUAGES)
def test_handoff_sends_the_whole_packet_says_the_wait_and_pauses(domain, language, handoff_service):
    sent, _ = handoff_service
    slots = {"customer_id": "48213377", "customer_name": "Sanne de Vries", "identity_verified_by": "customer_number+postcode",
             "problem_description": "mijn föhn is kapot", "problem_intent": "defective_product",
             "bot_attempts": ["defective_product:out_of_warranty"], "handoff_reason": "complexity", "product": "föhn"}
    tracker = make_tracker("hij doet het nog steeds niet", "defective_product", slots=slots, language=language)
    dispatcher, events = run(ActionHandoff(), tracker, domain)
    assert responses(dispatcher) == ["utter_handoff_complexity", "utter_handoff_queued"]
    assert dispatcher.messages[1]["queue_position"] == "2" and dispatcher.messages[1]["queue_minutes"] == "12"
    assert any(e["event"] == "pause" for e in events)
    slots = slot_events(events)
    assert slots["queue_position"] == "2" and slots["handoff_case_id"] == "c_1" and slots["handoff_pending"] is None
    packet = sent[0]
    assert packet["problem_description"] == "mijn föhn is kapot" and packet["language"] == language
    assert packet["identity"]["verified_by"] == "customer_number+postcode"
    assert packet["bot_attempts"] == ["defective_product:out_of_warranty"] and packet["reason"] == "complexity"
    assert packet["entities"]["product"] == "föhn" and packet["transcript"]


def test_nobody_available_promises_a_reply_time(domain, handoff_service):
    _, answer = handoff_service
    answer.update(status="no_agents", reply_by="2026-11-23T09:00:00+00:00")
    dispatcher, _ = run(ActionHandoff(), make_tracker("medewerker", "request_human"), domain)
    assert responses(dispatcher) == ["utter_handoff_request", "utter_handoff_no_agents"]
    assert dispatcher.messages[1]["reply_by"]


def test_handoff_service_down_is_said_and_the_bot_stays(domain, monkeypatch):
    monkeypatch.setenv("HANDOFF_URL", "http://127.0.0.1:1")
    dispatcher, events = run(ActionHandoff(), make_tracker("medewerker", "request_human"), domain)
    assert responses(dispatcher) == ["utter_handoff_unavailable"]
    assert not any(e["event"] == "pause" for e in events)
    # The request is not lost: the handoff service opens it from the event stream once it is back.
    assert slot_events(events)["handoff_pending"] == "request"


def test_handback_ends_the_service_trouble(domain):
    from actions.escalation import ActionHandback
    tracker = make_tracker("", None, slots={"service_trouble": True, "handoff_pending": "backend_failure"})
    _, events = run(ActionHandback(), tracker, domain)
    assert slot_events(events)["service_trouble"] is None and slot_events(events)["handoff_pending"] is None


def test_handback_keeps_every_slot(domain):
    from actions.escalation import ActionHandback
    dispatcher, events = run(ActionHandback(), make_tracker("", None, slots={"customer_id": "48213377"}), domain)
    assert responses(dispatcher) == ["utter_handback"]
    assert "customer_id" not in slot_events(events)


def test_a_request_for_a_person_is_the_reason_even_with_another_reason_pending(domain, handoff_service):
    tracker = make_tracker("medewerker", "request_human", slots={"handoff_reason": "second_miss"})
    dispatcher, events = run(ActionHandoff(), tracker, domain)
    assert responses(dispatcher)[0] == "utter_handoff_request"
    assert slot_events(events)["handoff_reason"] == "request"


def test_an_empty_message_is_not_a_miss(domain):
    dispatcher, events = run(ActionHandleMiss(), make_tracker("   ", "nlu_fallback"), domain)
    assert responses(dispatcher) == ["utter_empty_message"]
    assert "consecutive_misses" not in slot_events(events)


def test_out_of_scope_in_an_unsupported_language_says_which_languages_we_speak(domain):
    from actions.problems import ActionOutOfScope
    text = "Bonjour, je voudrais savoir où est ma commande s'il vous plaît"
    dispatcher, _ = run(ActionOutOfScope(), make_tracker(text, "out_of_scope", detection=detection(text)), domain)
    assert responses(dispatcher) == ["utter_unsupported_language"]


# -- issue 3: every simple case against the seeded SQL backend ---------------------------------
def solve(domain, customer_id, case, language="nl", **slots):
    tracker = make_tracker(slots={"customer_id": customer_id, "problem_intent": case, **slots}, language=language)
    return run(ActionSolveProblem(), tracker, domain)


@pytest.mark.parametrize("language", LANGUAGES)
def test_known_outage_is_explained_first(domain, language):
    dispatcher, events = solve(domain, "39481726", "report_outage", language)
    assert responses(dispatcher)[:2] == ["utter_outage_notice", "utter_outage_confirmed"]
    assert dispatcher.messages[0]["postcode"] == "3581 KP" and dispatcher.messages[0]["fix_time"]
    assert slot_events(events)["outage_notified"] is True


def test_no_outage_asks_one_restart_then_a_person(domain):
    dispatcher, events = solve(domain, "48213377", "report_outage")
    assert responses(dispatcher)[0] == "utter_no_outage_restart"
    attempts = slot_events(events)["bot_attempts"]
    _, events = solve(domain, "48213377", "report_outage", bot_attempts=attempts)
    assert slot_events(events)["handoff_reason"] == "complexity"


@pytest.mark.parametrize("language", LANGUAGES)
def test_replacement_ships_now_and_is_promised(domain, seeded_backend, language):
    dispatcher, events = solve(domain, "48213377", "defective_product", language, product="föhn")
    message = dispatcher.messages[0]
    assert message["response"] == "utter_replacement_sent" and message["reference"].startswith("RV-")
    assert message["carrier"] == "PostNL"
    promises = seeded_backend.promises("48213377")
    assert any(p.kind == "replacement" and p.reference == message["reference"] for p in promises)
    assert slot_events(events)["next_step"] == "done"


def test_unnamed_product_with_several_purchases_asks_which_with_buttons(domain):
    dispatcher, events = solve(domain, "48213377", "defective_product")
    assert responses(dispatcher) == ["utter_ask_which_product"]
    assert dispatcher.messages[0]["buttons"]
    assert slot_events(events)["next_step"] == "done"


@pytest.mark.parametrize("language", LANGUAGES)
def test_unnamed_product_with_one_purchase_is_asked_not_replaced_on_a_guess(domain, seeded_backend, language):
    """A misread "het doet het niet" must not ship a replacement: the one product is offered as a button."""
    from actions.backend.seed import CUSTOMERS

    def delivered(customer_id):
        return [p for p in seeded_backend.purchases(customer_id) if p.delivered_on and not p.returned]

    customer_id = next(c.id for c in CUSTOMERS if len(delivered(c.id)) == 1)
    shipped_before = [p for p in seeded_backend.promises(customer_id) if p.kind == "replacement"]
    dispatcher, events = solve(domain, customer_id, "defective_product", language)
    assert responses(dispatcher) == ["utter_ask_which_product"]
    assert [b["title"] for b in dispatcher.messages[0]["buttons"]] == [delivered(customer_id)[0].product]
    assert [p for p in seeded_backend.promises(customer_id) if p.kind == "replacement"] == shipped_before
    assert slot_events(events)["next_step"] == "done"


def test_out_of_warranty_is_honest_and_goes_to_a_person(domain):
    dispatcher, events = solve(domain, "60418825", "defective_product", "en", product="kettle")
    assert responses(dispatcher) == ["utter_out_of_warranty"]
    assert slot_events(events)["handoff_reason"] == "complexity"


@pytest.mark.parametrize("language, amount", [("nl", "€ 149,99"), ("en", "€149.99")])
def test_refund_within_policy(domain, seeded_backend, language, amount):
    dispatcher, _ = solve(domain, "48213377", "request_refund", language)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_refund_done" and message["reference"].startswith("RF-")
    assert message["amount"] == amount
    assert any(p.kind == "refund" for p in seeded_backend.promises("48213377"))


def test_refund_outside_policy_goes_to_a_person_with_the_reason(domain):
    dispatcher, events = solve(domain, "60418825", "request_refund", "en")
    assert responses(dispatcher) == ["utter_refund_too_late"]
    assert slot_events(events)["handoff_reason"] == "complexity"
    assert "too_late" in slot_events(events)["bot_attempts"][-1]


def test_refund_of_someone_elses_order_is_refused_like_an_unknown_one(domain):
    dispatcher, _ = solve(domain, "48213377", "request_refund", order_number="2024120451")
    assert responses(dispatcher) == ["utter_order_not_found"]


def test_contact_field_is_inferred_and_only_the_missing_value_asked(domain):
    dispatcher, events = solve(domain, "51937204", "change_contact_details", problem_description="ik ga verhuizen")
    slots = slot_events(events)
    assert slots["contact_field"] == "address" and slots["next_step"] == "collect_contact"
    assert responses(dispatcher) == []


def test_contact_change_is_confirmed_back(domain, seeded_backend):
    dispatcher, _ = solve(domain, "45678912", "change_contact_details", "en",
                          new_contact_value="jan.peeters+new@example.be", problem_description="change my email please")
    assert dispatcher.messages[0]["response"] == "utter_contact_updated_email"
    assert dispatcher.messages[0]["value"] == "jan.peeters+new@example.be"
    assert seeded_backend.get_customer("45678912").email == "jan.peeters+new@example.be"


def test_second_unusable_contact_value_goes_to_a_person(domain):
    from actions.contact_details_form import ValidateContactDetailsForm
    form = ValidateContactDetailsForm()
    tracker = make_tracker("geen idee", "inform", slots={"contact_field": "email", "contact_attempts": 1.0})
    result = form.validate_new_contact_value("geen idee", CollectingDispatcher(), tracker, domain)
    assert result["contact_attempts"] == 2.0
    _, events = solve(domain, "45678912", "change_contact_details", contact_field="email", contact_attempts=2.0)
    assert slot_events(events)["handoff_reason"] == "second_miss"


def test_identification_is_followed_by_the_outage_notice(domain):
    dispatcher, events = validate(domain, "3581 KP", {"identifier": "39481726", "postcode": "3581 KP"})
    assert responses(dispatcher) == ["utter_identified", "utter_outage_notice"]
    assert slot_events(events)["outage_notified"] is True


def test_outages_are_read_while_the_identity_is_checked(domain, seeded_backend, monkeypatch):
    """Not one lookup after the other: verify waits until the outage lookup has started."""
    import threading
    started = threading.Event()

    class Overlapping:
        def verify(self, *args):
            assert started.wait(5), "the outages were not read while the identity was checked"
            return seeded_backend.verify(*args)

        def outages_at(self, postcode):
            started.set()
            return seeded_backend.outages_at(postcode)
    monkeypatch.setattr("actions.identification.get_async_backend", lambda: AsyncBackend(Overlapping()))
    dispatcher, events = validate(domain, "3581 kp", {"identifier": "39481726", "postcode": "3581 kp"})
    assert responses(dispatcher) == ["utter_identified", "utter_outage_notice"]
    assert slot_events(events)["customer_id"] == "39481726"


def test_outages_are_not_told_to_someone_not_verified(domain, seeded_backend):
    dispatcher, events = validate(domain, "3581 KP", {"identifier": "48213377", "postcode": "3581 KP"})
    assert responses(dispatcher) == ["utter_identification_mismatch"]
    assert "outage_notified" not in slot_events(events)


def test_returning_identified_customer_hears_about_the_outage_first(domain):
    from actions.session import ActionGreet
    tracker = make_tracker("hallo", "greet", slots={"customer_id": "39481726", "disclosed": False})
    dispatcher, _ = run(ActionGreet(), tracker, domain)
    assert responses(dispatcher) == ["utter_greet", "utter_outage_notice"]


def test_late_order_promises_a_resend(domain, seeded_backend):
    dispatcher, _ = solve(domain, "51937204", "order_status", "en")
    assert responses(dispatcher)[0] == "utter_order_late"
    assert any(p.kind == "redelivery" and p.reference == "2024120451" for p in seeded_backend.promises("51937204"))


def test_inconsistent_order_data_is_a_backend_failure(domain, monkeypatch):
    import dataclasses
    from actions.backend import get_backend
    backend = get_backend()
    real = backend.orders
    monkeypatch.setattr(backend, "orders", lambda cid: [dataclasses.replace(o, status="???") for o in real(cid)])
    dispatcher, events = solve(domain, "48213377", "order_status")
    assert responses(dispatcher) == ["utter_backend_unavailable"]
    assert slot_events(events)["handoff_reason"] == "backend_failure"


# -- identity from the channel (WhatsApp phone, shop token) -----------------------------------
def shop_token(sub="48213377", secret="shop-secret-for-tests", lifetime=900, issued=None):
    import jwt
    now = int(issued if issued is not None else time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + lifetime}, secret, algorithm="HS256")


def observe_with(domain, metadata, channel):
    tracker = make_tracker("hoi", "greet", detection=detection("hoi"))
    tracker.events[-1]["metadata"] = metadata
    tracker.events[-1]["input_channel"] = channel
    _, events = run(ActionObserveTurn(), tracker, domain)
    return slot_events(events)


@pytest.fixture
def shop_secret(monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN_SECRET", "shop-secret-for-tests")


def test_a_signed_shop_token_identifies_without_a_question(domain, shop_secret):
    slots = observe_with(domain, {"shop_token": shop_token()}, "webchat")
    assert slots["customer_id"] == "48213377" and slots["identity_verified_by"] == "shop_token"


@pytest.mark.parametrize("token", [
    shop_token(secret="someone-else"),                   # forged
    shop_token(issued=time.time() - 7200),               # expired
    shop_token(lifetime=30 * 86400),                     # a month-long token is not accepted
    "not-a-token",
])
def test_a_forged_or_expired_token_leaves_the_customer_unknown(domain, shop_secret, token):
    assert "customer_id" not in observe_with(domain, {"shop_token": token}, "webchat")


def test_whatsapp_phone_identifies_but_only_on_whatsapp(domain):
    slots = observe_with(domain, {"channel": "whatsapp", "phone": "+31612345678"}, "whatsapp")
    assert slots["customer_id"] == "48213377" and slots["identity_verified_by"] == "whatsapp_phone"
    # The same claim from a web client is just data the client typed.
    assert "customer_id" not in observe_with(domain, {"channel": "whatsapp", "phone": "+31612345678"}, "webchat")


def test_agent_joined_says_who(domain):
    from actions.escalation import ActionAgentJoined
    dispatcher, _ = run(ActionAgentJoined(), make_tracker(slots={"agent_name": "Eva de Jong"}), domain)
    assert dispatcher.messages[0]["response"] == "utter_agent_joined"
    assert dispatcher.messages[0]["agent_name"] == "Eva de Jong" and dispatcher.messages[0]["event"] == "agent_joined"


@pytest.mark.parametrize("language, word", [("en", "hair dryer"), ("nl", "föhn")])
def test_a_product_not_among_the_purchases_is_named_in_the_customers_language(domain, language, word):
    # Emily bought no föhn: the question names the product as the customer reads it, not the
    # catalogue word "föhn" the synonyms store for "hairdryer".
    dispatcher, _ = solve(domain, "60418825", "defective_product", language, product="föhn")
    assert responses(dispatcher) == ["utter_product_not_found"]
    assert dispatcher.messages[0]["product"] == word


def test_catalogue_words_read_in_dutch():
    from actions.common import product_word

    assert product_word("kettle", "nl") == "waterkoker"
    assert product_word("Kettle", "en") == "kettle"
    assert product_word("airfryer", "nl") == "airfryer"  # not a catalogue word: unchanged
