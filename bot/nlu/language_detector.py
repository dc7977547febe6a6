"""NLU component: per-message language detection (nl/en) with a confidence.

It runs first in the pipeline so the tokenizer can pick the right language. The detection is
added to the parse data as ``language_detection``; whether it changes the conversation's
``language`` slot is decided after the message, with the conversation's history in view
(``actions/session.py`` with ``bot.language.decide_language``), because one message alone cannot
be sticky.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.language import DEFAULT_LANGUAGE, Detection, get_detector

LANGUAGE_DETECTION = "language_detection"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class LanguageDetector(GraphComponent):
    """Sets ``language_detection`` (language, confidence, reliable, ...) on every message."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        """Creates the component (see parent class for full docstring).

        Builds the detector now, while the model loads (about a second), so the first customer
        after a start does not wait for it.
        """
        get_detector()
        return cls()

    @staticmethod
    def required_packages() -> List[Text]:
        """Packages needed by this component."""
        return ["langdetect"]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Detects the language of every training example (the tokenizer needs it)."""
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Detects the language of each message's text."""
        detector = get_detector()
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            detection = detector.detect(text)
            message.set(LANGUAGE_DETECTION, detection.as_dict(), add_to_output=True)
        return messages


def message_language(message: Message) -> str:
    """The best-guess language of a processed message, the default when unknown."""
    detection: Optional[Detection] = Detection.from_dict(message.get(LANGUAGE_DETECTION))
    if detection is not None and detection.language:
        return detection.language
    return DEFAULT_LANGUAGE
