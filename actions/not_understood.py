"""Messages not understood: ask once to rephrase (naming the best guess); the second goes to a person."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    CASE_INTENTS,
    acknowledge_once,
    answer_language_request,
    answer_puzzled,
    disclose_once,
    last_response,
    latest_intent,
    says_unsupported_language,
)
from actions.follow_up import ANYTHING_ELSE_QUESTIONS, nothing_else
from actions.frustration import frustrated

MAX_CONSECUTIVE_MISSES = 2


def best_guess(tracker: Tracker) -> Optional[str]:
    """The most likely case intent in the ranking of the missed message, if any."""
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    for candidate in ranking:
        name = candidate.get("name")
        if name == "nlu_fallback":
            continue
        return name if name in CASE_INTENTS and (candidate.get("confidence") or 0) >= 0.2 else None
    return None


class ActionHandleMiss(Action):
    """Runs on ``nlu_fallback``."""

    def name(self) -> Text:
        return "action_handle_miss"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = disclose_once(dispatcher, tracker)
        latest = tracker.latest_message or {}
        if not (latest.get("text") or "").strip():
            # Nothing was said, so nothing was misunderstood.
            dispatcher.utter_message(response="utter_empty_message")
            return events + [SlotSet("next_step", "done")]
        if says_unsupported_language(dispatcher, tracker) or answer_language_request(dispatcher, tracker):
            return events + [SlotSet("next_step", "done")]
        text = latest.get("text") or ""
        if not any(ch.isalnum() for ch in text) and not frustrated(text):
            # "👍", "!!": an acknowledgement or a nudge, not a misunderstanding; "???" puzzlement.
            # ("!!!!" and "😡" are anger: a person, below.)
            if not answer_puzzled(dispatcher, tracker):
                acknowledge_once(dispatcher, tracker)
            return events + [SlotSet("next_step", "done")]

        if latest_intent(tracker) == "deny" and last_response(tracker) in ANYTHING_ELSE_QUESTIONS:
            # "Nee, dat was het" to "was something unclear?": no second miss, the goodbye.
            return events + await nothing_else(dispatcher, tracker)

        misses = int(tracker.get_slot("consecutive_misses") or 0) + 1
        events.append(SlotSet("consecutive_misses", float(misses)))
        if frustrated(text):
            # Not understood, and fed up: asking them to rephrase would make it worse.
            return events + [SlotSet("handoff_reason", "frustration"), SlotSet("next_step", "handoff")]
        if misses >= MAX_CONSECUTIVE_MISSES:
            return events + [SlotSet("handoff_reason", "second_miss"), SlotSet("next_step", "handoff")]

        guess = best_guess(tracker)
        if not tracker.get_slot("problem_description"):
            events.append(SlotSet("missed_text", latest.get("text")))
        if guess:
            dispatcher.utter_message(response=f"utter_did_you_mean_{guess}")
        else:
            dispatcher.utter_message(response="utter_rephrase")
        return events + [SlotSet("suggested_intent", guess), SlotSet("next_step", "done")]
