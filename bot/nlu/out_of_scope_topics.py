"""NLU component: the topics of out_of_scope are learned apart and reported as one intent.

Out of scope is not one thing: the weather, a playlist, a train ticket and "how do I create an
account" have nothing in common but that this assistant does not handle them. Trained as one
intent, DIET must put all of them near one label embedding, and that label becomes the
catch-all for any phrasing it has not seen, in-scope requests included. So the training data
labels them by topic (``out_of_scope_weather``, ``out_of_scope_shop``, ...: every intent whose
name starts with ``out_of_scope_``), and this component, placed right after DIETClassifier,
adds their confidences up into ``out_of_scope`` in the intent and the ranking. Nothing after it
(FallbackClassifier, the dialogue, the domain) ever sees a topic; the topic DIET chose stays in
the parse data as ``out_of_scope_topic``.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.component import ConfigOnlyComponent

OUT_OF_SCOPE = "out_of_scope"
TOPIC_PREFIX = OUT_OF_SCOPE + "_"
TOPIC = "out_of_scope_topic"


def is_topic(name: Any) -> bool:
    """True for ``out_of_scope`` and its topics."""
    return isinstance(name, str) and (name == OUT_OF_SCOPE or name.startswith(TOPIC_PREFIX))


def merge_ranking(ranking: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The ranking with every out-of-scope topic added into one ``out_of_scope`` entry."""
    total = 0.0
    merged: List[Dict[str, Any]] = []
    for item in ranking:
        if is_topic(item.get(INTENT_NAME_KEY)):
            total += float(item.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        else:
            merged.append(dict(item))
    if any(is_topic(item.get(INTENT_NAME_KEY)) for item in ranking):
        merged.append({INTENT_NAME_KEY: OUT_OF_SCOPE, PREDICTED_CONFIDENCE_KEY: total})
    return sorted(merged, key=lambda item: -float(item.get(PREDICTED_CONFIDENCE_KEY) or 0.0))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class OutOfScopeTopics(ConfigOnlyComponent):
    """Adds the out-of-scope topics' confidences up into ``out_of_scope``."""

    def process(self, messages: List[Message]) -> List[Message]:
        """Merges the topics in the intent and the ranking of each message."""
        for message in messages:
            intent = message.get(INTENT) or {}
            ranking = message.get(INTENT_RANKING_KEY) or []
            name = intent.get(INTENT_NAME_KEY)
            if not is_topic(name) and not any(is_topic(item.get(INTENT_NAME_KEY)) for item in ranking):
                continue
            merged = merge_ranking(ranking) if ranking else []
            if is_topic(name):
                if name != OUT_OF_SCOPE:
                    message.set(TOPIC, name, add_to_output=True)
                confidence = next(
                    (item[PREDICTED_CONFIDENCE_KEY] for item in merged if item[INTENT_NAME_KEY] == OUT_OF_SCOPE),
                    intent.get(PREDICTED_CONFIDENCE_KEY),
                )
                message.set(INTENT, {INTENT_NAME_KEY: OUT_OF_SCOPE, PREDICTED_CONFIDENCE_KEY: confidence},
                            add_to_output=True)
            elif merged:
                top = merged[0]
                if top[INTENT_NAME_KEY] == OUT_OF_SCOPE:
                    # The topics together outweigh the intent DIET named.
                    message.set(INTENT, dict(top), add_to_output=True)
            if ranking:
                message.set(INTENT_RANKING_KEY, merged, add_to_output=True)
        return messages
