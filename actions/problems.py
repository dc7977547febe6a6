"""The customer's problem: take it in their own words, then solve it or pass it on.

``action_take_problem`` runs when a message names a case. It keeps the first description
verbatim, confirms in one sentence what the bot understood, and sets ``next_step``:
``identify`` (identification form), ``solve`` (``action_solve_problem``) or ``handoff``.
The rules in data/rules/problems.yml follow ``next_step``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import BackendUnavailable
from actions.common import (
    CASE_INTENTS,
    CASES_WITHOUT_CONFIRMATION,
    CASES_WITHOUT_IDENTITY,
    COMPLEX_CASES,
    answer_language_request,
    disclose_once,
    is_identified,
    proactive_outage_notice,
    record_attempt,
    remember_topic,
    said_since_customer,
    says_unsupported_language,
)
from actions.cases import CASE_SOLVERS
from actions.follow_up import answer_follow_up, follow_up_in_doubt, repeated_case
from actions.frustration import frustrated
from actions.identification import identify_now
from actions.solvers import Outcome

logger = logging.getLogger(__name__)


def _problem_text(tracker: Tracker) -> Optional[str]:
    """The customer's words for the problem: a button payload stands for the missed text."""
    text = (tracker.latest_message or {}).get("text") or ""
    if text.startswith("/"):
        return tracker.get_slot("missed_text")
    return text or None


def _complex_reason(tracker: Tracker) -> str:
    """Why a complex case goes to a person: "frustration" when the customer is fed up after the bot
    already tried something this conversation ("still can't get in, this is ridiculous"), else
    "complexity"."""
    text = (tracker.latest_message or {}).get("text") or ""
    return "frustration" if tracker.get_slot("bot_attempts") and frustrated(text) else "complexity"


def for_a_person(case: str) -> bool:
    """A complex case the bot cannot even try: it goes to a person once identified (or not)."""
    return case in COMPLEX_CASES and case not in CASE_SOLVERS


def _case_intent(tracker: Tracker) -> Optional[str]:
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    if intent in CASE_INTENTS:
        return intent
    if intent == "affirm":
        # "Yes" to "Is it about ...?" after a misunderstanding.
        suggested = tracker.get_slot("suggested_intent")
        return suggested if suggested in CASE_INTENTS else None
    return None


class ActionTakeProblem(Action):
    """Takes in the customer's problem and decides the next step."""

    def name(self) -> Text:
        return "action_take_problem"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = disclose_once(dispatcher, tracker)
        case = _case_intent(tracker)
        if case is None:
            dispatcher.utter_message(response="utter_ask_problem")
            return events + [SlotSet("next_step", "done")]

        repeat = repeated_case(tracker, case)
        if repeat:
            # Told again after the bot handled it: the next step, never the same answer.
            return events + await answer_follow_up(dispatcher, tracker, case, repeat)

        continuing = case == tracker.get_slot("problem_intent")
        events += [SlotSet("problem_intent", case), SlotSet("suggested_intent", None)]
        if not tracker.get_slot("problem_description"):
            events.append(SlotSet("problem_description", _problem_text(tracker)))
        if not continuing and case not in CASES_WITHOUT_CONFIRMATION:
            dispatcher.utter_message(response=f"utter_understood_{case}")
        events += await proactive_outage_notice(dispatcher, tracker)

        if case in CASES_WITHOUT_IDENTITY or is_identified(tracker):
            if for_a_person(case):
                return events + [SlotSet("handoff_reason", _complex_reason(tracker)), SlotSet("next_step", "handoff")]
            return events + [SlotSet("next_step", "solve")]
        # Identity details in the same message as the problem are used at once.
        tracker.slots["problem_intent"] = case
        found, status = await identify_now(dispatcher, tracker)
        events += found
        if status == "verified":
            if for_a_person(case):
                return events + [SlotSet("handoff_reason", "complexity"), SlotSet("next_step", "handoff")]
            return events + [SlotSet("next_step", "solve")]
        if status == "failed" or (case in COMPLEX_CASES and tracker.get_slot("identification_failed")):
            reason = "complexity" if case in COMPLEX_CASES else tracker.get_slot("handoff_reason")
            return events + [SlotSet("handoff_reason", reason or "identification_failed"),
                             SlotSet("next_step", "handoff")]
        # A complex case: identification is asked once (and is optional) before a person takes it,
        # so the agent does not have to ask again (action_ask_identifier says why).
        return events + [SlotSet("next_step", "identify")]


def _outage_told_now(tracker: Tracker) -> bool:
    """True when the outage notice went out since the customer's latest message."""
    return "utter_outage_notice" in said_since_customer(tracker)


class ActionSolveProblem(Action):
    """Solves the current case with the identity already known, or hands it over."""

    def name(self) -> Text:
        return "action_solve_problem"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        case = tracker.get_slot("problem_intent")
        events: List[EventType] = [SlotSet("requested_slot", None)]
        if case is None:
            # Identified before saying what it is about: ask now (the outage, if any, was told).
            if is_identified(tracker):
                response = "utter_ask_problem_after_outage" if _outage_told_now(tracker) else "utter_ask_problem_identified"
            else:
                response = "utter_ask_problem"
            dispatcher.utter_message(response=response)
            return events + [SlotSet("next_step", "done")]
        if for_a_person(case):
            return events + [SlotSet("handoff_reason", "complexity"), SlotSet("next_step", "handoff")]
        if case not in CASES_WITHOUT_IDENTITY and not is_identified(tracker):
            # A complex case the bot could have tried (a double charge) is still complex for a person.
            reason = "complexity" if case in COMPLEX_CASES else tracker.get_slot("handoff_reason") or "identification_failed"
            return events + [SlotSet("handoff_reason", reason), SlotSet("next_step", "handoff")]

        solver = CASE_SOLVERS.get(case)
        if solver is None:
            return events + [
                record_attempt(tracker, f"{case}:no_automation"),
                SlotSet("handoff_reason", "no_automation"),
                SlotSet("next_step", "handoff"),
            ]
        try:
            outcome: Outcome = await solver(dispatcher, tracker)
        except BackendUnavailable as error:
            logger.warning("backend unavailable while solving %s: %s", case, error)
            dispatcher.utter_message(response="utter_backend_unavailable")
            return events + [
                record_attempt(tracker, f"{case}:backend_failure"),
                SlotSet("handoff_reason", "backend_failure"),
                SlotSet("next_step", "handoff"),
            ]
        events += [record_attempt(tracker, f"{case}:{outcome.result}"), *outcome.events]
        if outcome.facts:
            events += remember_topic(case, outcome.facts)
        if outcome.handoff_reason:
            return events + [SlotSet("handoff_reason", outcome.handoff_reason), SlotSet("next_step", "handoff")]
        if outcome.next_step:
            # The solver asked the customer something; the case stays open.
            return events + [SlotSet("next_step", outcome.next_step)]
        dispatcher.utter_message(response="utter_anything_else")
        # The case is closed; a new problem later starts fresh but keeps the identity.
        return events + [SlotSet("problem_intent", None), SlotSet("next_step", "done")]


class ActionOutOfScope(Action):
    """Says honestly what the assistant cannot do, and what it can; a follow-up about the topic in
    hand that the classifier could only rank second is answered as one (follow_up_in_doubt)."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events = disclose_once(dispatcher, tracker)
        if says_unsupported_language(dispatcher, tracker) or answer_language_request(dispatcher, tracker):
            return events + [SlotSet("next_step", "done")]
        in_doubt = follow_up_in_doubt(tracker)
        if in_doubt:  # a follow-up about the topic in hand, answered as one (it may need a person)
            return events + await answer_follow_up(dispatcher, tracker, *in_doubt)
        # Gibberish (bot/nlu/nonsense_guard.py) is said to be so, not called "not our business".
        nonsense = (tracker.latest_message or {}).get("nonsense")
        dispatcher.utter_message(response="utter_nonsense" if nonsense else "utter_out_of_scope")
        return events + [SlotSet("next_step", "done")]
