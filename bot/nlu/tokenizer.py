"""NLU component: spaCy tokenisation per message language, with lookup lemmas.

``spacy.blank("nl")``/``spacy.blank("en")`` give rule-based tokenisers that keep e-mail
addresses, postcodes and "can't" right; :mod:`bot.lemmas` adds lemmas from
spacy-lookups-data so "bestellingen"/"bestelling" and "werkt"/"werken" share features
(CountVectorsFeaturizer uses ``Token.lemma``). One model serves both languages.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Dict, List, Optional, Text

import spacy
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.language import SUPPORTED_LANGUAGES
from bot.lemmas import get_lemmatizer
from bot.nlu.language_detector import message_language


@cache
def _blank(lang: str) -> spacy.language.Language:
    return spacy.blank(lang)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class BilingualLemmaTokenizer(Tokenizer):
    """Tokenises with the blank spaCy pipeline of the message's language and adds lemmas."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Packages needed by this component."""
        return ["spacy", "spacy_lookups_data"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BilingualLemmaTokenizer:
        """Creates the component (see parent class for full docstring).

        Loads the spaCy tokenisers and lemma tables of both languages now, while the model
        loads, so the first customer after a start does not wait for them.
        """
        for lang in SUPPORTED_LANGUAGES:
            _blank(lang)
            get_lemmatizer(lang)
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Tokenises ``attribute`` of ``message`` in the message's detected language."""
        text: Optional[str] = message.get(attribute)
        lang = message_language(message)
        if lang not in SUPPORTED_LANGUAGES:
            lang = SUPPORTED_LANGUAGES[0]
        tokens = tokenize_text(text or "", lang)
        return self._apply_token_pattern(tokens)


def tokenize_text(text: str, lang: str) -> List[Token]:
    """Tokens (with lemmas) of ``text`` in language ``lang``.

    Whitespace and punctuation-only tokens are dropped; if nothing is left (an emoji-only
    message), the stripped text itself is the one token, so no message is featureless.
    """
    lemmatizer = get_lemmatizer(lang)
    tokens: List[Token] = []
    for spacy_token in _blank(lang).make_doc(text):
        if spacy_token.is_space or spacy_token.is_punct:
            continue
        word = spacy_token.text
        tokens.append(Token(word, spacy_token.idx, lemma=lemmatizer.lemma(word)))
    if not tokens and text.strip():
        stripped = text.strip()
        tokens.append(Token(stripped, text.index(stripped), lemma=stripped))
    return tokens
