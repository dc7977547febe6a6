"""NLU component: a message whose substance is identity details is ``inform``.

"goedemiddag, ik ben klant 39481726, postcode 3581 KP" opens with a greeting; DIET may call it
``greet`` (or miss it). The customer number and postcode, found by the regex extractor, are what
the message is about: with one of them and an intent that is not a case or a follow-up
(greeting, thanks, yes/no, out of scope, a miss), the intent becomes ``inform`` so the
dialogue identifies the customer at once. A case intent is kept when the classifier is sure of it
("mijn internet doet het niet, klantnummer 39481726"): the case action uses the details itself; a
guess is not acted on (below ``MIN_CASE_CONFIDENCE_WITH_IDENTITY`` the message is ``inform``). A message that is nothing but
identity details ("lucy@example.com", marked by bot.nlu.identity_mask.IdentityMask) is ``inform``
whatever the classifier made of it. Runs after FallbackClassifier.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.component import ConfigOnlyComponent
from bot.nlu.identity_mask import IDENTITY_ONLY

IDENTITY_ENTITIES = ("customer_number", "email", "phone_number", "postcode")
# Intents that say nothing the identity details would contradict.
SMALL_TALK = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "out_of_scope", "nlu_fallback", "inform")
# Questions about the matter in hand ("when will it arrive? 60418825") are kept whatever their confidence.
FOLLOW_UPS = ("ask_when", "ask_faster", "not_solved", "request_human")
OVERRIDDEN_FROM = "identity_overrode"


# Below this confidence a case read in a message that carries identity details is a guess
# ("I have a question about my order, customer 37710254 …" read as cancel_order at 0.83): the
# customer is identified and asked what it is about, instead of having an order cancelled.
MIN_CASE_CONFIDENCE_WITH_IDENTITY = 0.9


def identity_intent(intent: Dict[str, Any], entities: List[Dict[str, Any]]) -> bool:
    """True when a message with ``intent`` and ``entities`` should be ``inform``."""
    if not any(entity.get("entity") in IDENTITY_ENTITIES for entity in entities or []):
        return False
    name = (intent or {}).get(INTENT_NAME_KEY)
    if name in SMALL_TALK:
        return True
    return name not in FOLLOW_UPS and float((intent or {}).get(PREDICTED_CONFIDENCE_KEY) or 0) < MIN_CASE_CONFIDENCE_WITH_IDENTITY


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class IdentityIntent(ConfigOnlyComponent):
    """Sets the intent to ``inform`` for greetings/misses that carry identity details."""

    def process(self, messages: List[Message]) -> List[Message]:
        """Overrides the intent where the identity details are the message."""
        for message in messages:
            intent = message.get(INTENT) or {}
            only = bool(message.get(IDENTITY_ONLY))  # set by bot.nlu.identity_mask.IdentityMask
            if intent.get(INTENT_NAME_KEY) != "inform" and (
                    only or identity_intent(intent, message.get(ENTITIES) or [])):
                message.set(OVERRIDDEN_FROM, intent.get(INTENT_NAME_KEY), add_to_output=True)
                message.set(INTENT, {INTENT_NAME_KEY: "inform", PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
        return messages
