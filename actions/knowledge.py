"""Questions of fact answered from the knowledge base (data/knowledge/, one article per topic).

The NLU pipeline's ResponseSelector picks the article (``faq/<topic>``); the answer is the
article's response in the conversation's language and register. An article chosen with low
confidence is not an answer: the customer hears that the assistant does not know, and that a
person is one word away, rather than the nearest article. A question that points back at what
was just handled ("en wie bezorgt het?" after an order's status) is answered about that
(``actions.follow_up.detail_in_hand``); the events end with ``next_step`` (done, or a handoff
when the follow-up needs a person).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import disclose_once, remember_topic
from actions.follow_up import answer_follow_up, can_answer_about, detail_in_hand

RETRIEVAL_INTENT = "faq"
# Below this the article is a guess (measured on the held-out questions: scripts/bench_understanding.py).
MIN_CONFIDENCE = 0.5


def chosen_article(latest_message: Dict[str, Any]) -> Tuple[Optional[str], float]:
    """("faq/delivery_options", confidence) as the ResponseSelector chose it; (None, 0) for none."""
    selector = ((latest_message or {}).get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    response = selector.get("response") or {}
    key = response.get("intent_response_key")
    return (key, float(response.get("confidence") or 0.0)) if key else (None, 0.0)


def answer_article(dispatcher: CollectingDispatcher, latest_message: Dict[str, Any]) -> Optional[str]:
    """Says the chosen article when the ResponseSelector is sure of it; the article, else None."""
    article, confidence = chosen_article(latest_message)
    if article is None or confidence < MIN_CONFIDENCE:
        return None
    dispatcher.utter_message(response=f"utter_{article}")
    return article


class ActionAnswerKnowledge(Action):
    """Answers a question of fact from the article the ResponseSelector chose, when it is sure."""

    def name(self) -> Text:
        return "action_answer_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = disclose_once(dispatcher, tracker)
        topic = detail_in_hand(tracker, chosen_article(tracker.latest_message)[0])
        if topic:  # "who's delivering it?" after an order's status: that order's carrier
            return events + await answer_follow_up(dispatcher, tracker, topic, "ask_when")
        # The article's response exists: the ResponseSelector only learns the articles in the
        # training data, each with its response (and the domain is not sent to this action).
        article = answer_article(dispatcher, tracker.latest_message)
        if article is None:
            dispatcher.utter_message(response="utter_knowledge_not_covered")
            return events + [SlotSet("next_step", "done")]
        if can_answer_about(tracker, tracker.get_slot("last_topic")):
            # A question of fact beside a case in hand leaves the case the topic: "hoeveel kost het
            # bezorgen?" and then "en wanneer komt hij precies?" is about the order.
            return events + [SlotSet("next_step", "done")]
        return events + remember_topic(article, {"article": article}) + [SlotSet("next_step", "done")]
