"""The knowledge article is chosen only for messages that may be a question of fact
(bot/nlu/knowledge_selector.py); the selector is Rasa's ResponseSelector, trained as before."""

from pathlib import Path

import pytest
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.utils.io import read_yaml_file

from bot.nlu.knowledge_selector import KnowledgeSelector, may_be_asked

ROOT = Path(__file__).resolve().parents[2]


def message(*ranking):
    return Message(data={TEXT: "x", INTENT_RANKING_KEY: [{"name": name, "confidence": c} for name, c in ranking]})


@pytest.mark.parametrize("ranking, expected", [
    ([("faq", 0.9), ("order_status", 0.1)], True),
    ([("order_status", 0.6), ("faq", 0.4)], True),  # second reading
    ([("nlu_fallback", 0.55), ("order_status", 0.5), ("faq", 0.45)], True),  # a miss's guesses
    ([("order_status", 0.8), ("ask_when", 0.15), ("faq", 0.05)], False),  # third: not asked
    ([("greet", 1.0)], False),
    ([], False),
])
def test_a_question_of_fact_is_among_the_first_two_readings(ranking, expected):
    assert may_be_asked(message(*ranking), "faq", 2) is expected


def test_only_those_messages_reach_the_response_selector(monkeypatch):
    reached = []
    monkeypatch.setattr(ResponseSelector, "process", lambda self, messages: reached.extend(messages) or messages)
    selector = KnowledgeSelector.__new__(KnowledgeSelector)  # the filter only, no network
    selector.retrieval_intent, selector.component_config = "faq", {"within": 2}
    asked, not_asked = message(("faq", 0.9)), message(("order_status", 0.9), ("greet", 0.1))
    assert selector.process([asked, not_asked]) == [asked, not_asked]
    assert reached == [asked]


def test_the_article_is_chosen_after_the_intent_is_decided():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    selector = pipeline.index("bot.nlu.knowledge_selector.KnowledgeSelector")
    assert pipeline.index("bot.nlu.second_opinion.SecondOpinion") < selector
    assert "ResponseSelector" not in pipeline
