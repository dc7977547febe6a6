"""NLU component: the knowledge article is chosen only for a message that may be a question of fact.

Rasa's ResponseSelector picks the article (``faq/<topic>``) for every message, whatever its intent;
the article is only used when the intent is ``faq`` (``actions/knowledge.py``), and the selector is
a second neural network of DIET's size: a third of a parse's CPU. ``KnowledgeSelector`` is that
ResponseSelector, trained the same way, placed after the intent is decided (``SecondOpinion``),
and run only for a message whose ranking has ``faq`` among its first ``within`` readings (the
fallback left out: a miss's best guess may be a question of fact). For every other message the
parse data has no article, which nothing reads.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

FALLBACK_INTENT = "nlu_fallback"


def may_be_asked(message: Message, retrieval_intent: str, within: int) -> bool:
    """True when ``retrieval_intent`` is among the first ``within`` readings of the message."""
    readings = [item.get(INTENT_NAME_KEY) for item in message.get(INTENT_RANKING_KEY) or []
                if item.get(INTENT_NAME_KEY) != FALLBACK_INTENT]
    return retrieval_intent in readings[:within]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class KnowledgeSelector(ResponseSelector):
    """ResponseSelector that only runs for messages that may be a question of fact."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """ResponseSelector's config, and how far down the ranking a question of fact may be."""
        return {**ResponseSelector.get_default_config(), "within": 2}

    def process(self, messages: List[Message]) -> List[Message]:
        """Chooses the article for the messages that may be a question of fact."""
        retrieval_intent = self.retrieval_intent or "faq"
        asked = [message for message in messages
                 if may_be_asked(message, retrieval_intent, int(self.component_config.get("within", 2)))]
        if asked:
            super().process(asked)
        return messages
