"""NLU component: gibberish is out of scope, whatever the classifier made of it.

DIET always picks one of the intents it knows, often with high confidence: "flurb zanq the
wibble" became ``complaint`` (and a handoff to a person). This guard runs after
FallbackClassifier and looks at the words themselves: a word is *known* when it is in the
training vocabulary (learned in ``train`` and persisted with the model), in the spaCy lookup
tables :mod:`bot.lemmas` already loads (lemma lookup, lemma index, exceptions; Dutch and
English, whatever the message's language), in spaCy's stop words, or in a short list of chat
and Flemish forms ("gsm", "ge", "da", "kheb", "thx"). A typo of a known word is known too: one
edit (insertion, deletion, substitution, transposition) from a training word (4+ letters) or
from any lexicon word (7+ letters), and Dutch/English compounds of two known words.

Words that are not words are never counted: numbers, order/customer numbers, postcodes,
e-mail addresses, URLs, anything a regex or lookup entity covers, single letters, and
capitalised names inside the message. A message is nonsense when at least
``min_unknown_words`` (2) of its counted words are unknown and they are at least
``min_unknown_share`` (half) of them; a message of one word only when it is a keyboard mash
("asdfgh", "qwrtzp"). "ok", "ja", "48213377", "3511 AB" are never nonsense.

On nonsense the intent becomes ``out_of_scope`` (confidence 1.0) and the parse data says
``"nonsense": true``; the intent ranking is left as the classifier made it. Every message gets
``nonsense`` (true/false) and ``nonsense_check`` (``{"unknown": [...], "words": n,
"unknown_share": x}``, plus ``"overrode"``: the classifier's intent, on nonsense), so actions and
logs can tell what happened. A message of question marks alone ("???") is no intent at all:
it becomes ``nlu_fallback``, which the core fallback answers by asking what is unclear.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Sequence, Set, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.language import SUPPORTED_LANGUAGES
from bot.lemmas import get_lemmatizer

logger = logging.getLogger(__name__)

NONSENSE = "nonsense"
NONSENSE_CHECK = "nonsense_check"
OUT_OF_SCOPE = "out_of_scope"
FALLBACK_INTENT = "nlu_fallback"
VOCABULARY_FILE = "vocabulary.json"

# Chat spellings, abbreviations and Flemish/colloquial Dutch forms that are in no lemma table
# but that customers type: never unknown, also when the training data happens to lack them.
CHAT_WORDS = frozenset(
    """
    ok oke oké okay okey okidoki k kk yes yep yup ya yeah yea ye nope nah nee neen jep jup
    thx tnx thnx ty tx thanks thank pls plz plss svp aub ajb dankjewel dankuwel dank merci
    lol haha hahaha hihi hmm hmmm uhm uh eh ehm euh huh oh oei oeps oops sorry sry
    hi hey hoi hallo hello hiya heya yo doei dag daag bye byebye cya ciao
    btw idk imo fyi asap omg wtf tbh ofc cuz coz bc u ur r ure im ive id ill dont cant wont
    isnt doesnt didnt hasnt havent wasnt arent shouldnt couldnt wouldnt thats whats hows wheres
    gsm ge gij gy da dat ni nie nieje wa wat wadde watte allee alee amai ambetant goesting
    zijde zedde kzijn kzit kheb kben kga kwil kan kmoet kweet kdenk tis tzal twas twordt
    mn m'n zn z'n ff effe efkes eventjes nu nou hè he hé zeg zegt joh jij jou hun
    efkes subiet direct stilletjes keer kzou kunde kunt moogde hebde zijt zedde
    wifi wi-fi modem router app apps webshop website online login inloggen email e-mail mail
    sms whatsapp postnl bpost dhl dpd gls ups fedex iban bic btw klarna ideal bancontact
    paypal airfryer föhn fohn smartwatch smartphone laptop tablet helder mijnhelder
    """.split()
)

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_VOWELS = set("aeiouyàáâäèéêëìíîïòóôöùúûü")
_ALPHABET = "abcdefghijklmnopqrstuvwxyzéëèïöüäáó"
_REPEATS = re.compile(r"(.)\1{2,}")


# --------------------------------------------------------------------------------------------
# The lexicon: spaCy's lookup tables (shared with bot.lemmas, so no extra memory) + stop words


@cache
def _stop_words() -> FrozenSet[str]:
    from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH
    from spacy.lang.nl.stop_words import STOP_WORDS as DUTCH

    return frozenset(word.lower() for word in ENGLISH | DUTCH)


def in_lexicon(word: str, rules: bool = True) -> bool:
    """True when spaCy's Dutch or English lemma tables or stop words know ``word`` (lower case);
    with ``rules``, also when bot.lemmas' suffix rules lead to a known lemma ("werkt")."""
    if word in _stop_words():
        return True
    for lang in SUPPORTED_LANGUAGES:
        lemmatizer = get_lemmatizer(lang)
        # The same tables bot.lemmas uses: the lookup table's forms, the lemma index and the
        # exceptions of every part of speech (private attributes, read-only here).
        if word in lemmatizer._lookup:  # noqa: SLF001
            return True
        if any(word in index for index in lemmatizer._index.values()):  # noqa: SLF001
            return True
        if any(word in exceptions for exceptions in lemmatizer._exceptions.values()):  # noqa: SLF001
            return True
    if rules:
        return any(get_lemmatizer(lang).lemma(word) != word for lang in SUPPORTED_LANGUAGES)
    return False


def _edits1(word: str) -> Iterable[str]:
    """Every string one edit away from ``word`` (Norvig's spelling-corrector candidates)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    for left, right in splits:
        if right:
            yield left + right[1:]  # deletion
            if len(right) > 1:
                yield left + right[1] + right[0] + right[2:]  # transposition
            for letter in _ALPHABET:
                if letter != right[0]:
                    yield left + letter + right[1:]  # substitution
        for letter in _ALPHABET:
            yield left + letter + right  # insertion


class Vocabulary:
    """Decides whether a word is known: training words, the lexicon, chat words, typos of them."""

    def __init__(self, training_words: Iterable[str] = ()) -> None:
        self.training_words: FrozenSet[str] = frozenset(w.lower() for w in training_words if w)

    def exact(self, word: str, rules: bool = True) -> bool:
        """Known as it is written (lower case)."""
        return word in self.training_words or word in CHAT_WORDS or in_lexicon(word, rules)

    def knows(self, word: str) -> bool:
        """Known as written, without repeated letters, in parts, as a compound, or as a typo."""
        word = word.lower().strip("'’-")
        if len(word) < 2 or self.exact(word):
            return True
        # "heyyy", "hellooo", "pleaaase": runs of a letter collapsed to two and to one.
        if _REPEATS.search(word):
            for collapsed in (_REPEATS.sub(r"\1\1", word), _REPEATS.sub(r"\1", word)):
                if self.exact(collapsed):
                    return True
        # "m'n", "e-mail", "wi-fi", "can't": every part known.
        parts = [part for part in re.split(r"['’\-]", word) if part]
        if len(parts) > 1 and all(len(part) < 2 or self.exact(part) for part in parts):
            return True
        if self._compound(word):
            return True
        return self._typo(word)

    def _compound(self, word: str) -> bool:
        """"wasmachinedeur", "smartwatchbandje", "klantnummer": two known words (3+ letters each),
        optionally joined by Dutch linking s/e/en."""
        if len(word) < 7:
            return False
        for cut in range(3, len(word) - 2):
            head, tail = word[:cut], word[cut:]
            if not self.exact(tail):
                continue
            if self.exact(head, rules=False):
                return True
            for link in ("s", "e", "en"):
                if head.endswith(link) and len(head) - len(link) >= 3 and self.exact(head[: -len(link)], rules=False):
                    return True
        return False

    def _typo(self, word: str) -> bool:
        """One edit from a training word (4+ letters) or from any lexicon word (7+ letters)."""
        if len(word) < 4:
            return False
        candidates = set(_edits1(word))
        if candidates & self.training_words:
            return True
        if len(word) >= 7:
            return any(in_lexicon(candidate, rules=False) for candidate in candidates)
        return False


# --------------------------------------------------------------------------------------------
# The decision


def countable(token_text: str) -> bool:
    """Whether a token is a word to judge: letters only (apostrophes/hyphens inside allowed)."""
    if len(token_text) < 2 or not _LETTER.search(token_text):
        return False
    if any(ch.isdigit() for ch in token_text):
        return False  # order numbers, "4pm", "e21", postcodes
    if any(ch in token_text for ch in "@./\\:#_=+&%€$"):
        return False  # e-mail addresses, URLs, file names, hashtags, amounts
    return all(ch.isalpha() or ch in "'’-" for ch in token_text)


def looks_mashed(word: str) -> bool:
    """A keyboard mash ("asdfgh", "qwrtzp", "jkjkjk"): no vowel in 4+ letters, or 5 consonants
    in a row, with at least 3 different letters."""
    letters = [ch for ch in word.lower() if ch.isalpha()]
    if len(letters) < 4 or len(set(letters)) < 3:
        return False
    if not any(ch in _VOWELS for ch in letters):
        return True
    run = longest = 0
    for ch in letters:
        run = 0 if ch in _VOWELS else run + 1
        longest = max(longest, run)
    return longest >= 5


def judge(
    words: Sequence[Tuple[str, bool]],
    vocabulary: Vocabulary,
    min_unknown_words: int = 2,
    min_unknown_share: float = 0.5,
) -> Dict[str, Any]:
    """The verdict on a message's words.

    ``words`` are (text, skip) pairs in message order, where ``skip`` marks tokens that are
    not to be judged (entities). Returns ``{"nonsense": bool, "unknown": [...], "words": n,
    "unknown_share": x}``.
    """
    counted: List[str] = []
    for position, (text, skip) in enumerate(words):
        if skip or not countable(text):
            continue
        if text[:1].isupper() and not text.isupper() and _is_name_position(words, position):
            continue  # a name: "Kowalczyk", "Sanne de Vries", "Pieter Janssens"
        counted.append(text)
    unknown = [word for word in counted if not vocabulary.knows(word)]
    share = len(unknown) / len(counted) if counted else 0.0
    if len(counted) == 1:
        nonsense = bool(unknown) and looks_mashed(unknown[0])
    else:
        nonsense = len(unknown) >= min_unknown_words and share >= min_unknown_share
    return {
        NONSENSE: nonsense,
        "unknown": unknown,
        "words": len(counted),
        "unknown_share": round(share, 3),
    }


def _is_name_position(words: Sequence[Tuple[str, bool]], position: int) -> bool:
    """A capitalised word is a name inside the message, or first when a capital follows."""
    if position > 0:
        return True
    following = [text for text, _ in words[1:] if countable(text)]
    return bool(following) and following[0][:1].isupper()


def message_words(message: Message) -> List[Tuple[str, bool]]:
    """(token text, inside an entity) for every token of the message's text."""
    spans = [
        (entity.get(ENTITY_ATTRIBUTE_START), entity.get(ENTITY_ATTRIBUTE_END))
        for entity in message.get(ENTITIES) or []
        if isinstance(entity.get(ENTITY_ATTRIBUTE_START), int) and isinstance(entity.get(ENTITY_ATTRIBUTE_END), int)
    ]
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    if not tokens:
        text = message.get(TEXT) or ""
        return [(match.group(0), False) for match in re.finditer(r"\S+", text)]
    return [
        (token.text, any(start < token.end and token.start < end for start, end in spans))
        for token in tokens
    ]


# --------------------------------------------------------------------------------------------
# The component


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class NonsenseGuard(GraphComponent):
    """Sets the intent to ``out_of_scope`` for messages made mostly of unknown words."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {"min_unknown_words": 2, "min_unknown_share": 0.5}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        training_words: Iterable[str] = (),
    ) -> None:
        self._config = {**self.get_default_config(), **(config or {})}
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = Vocabulary(training_words)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NonsenseGuard:
        """Creates an untrained component (see parent class for full docstring)."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> NonsenseGuard:
        """Loads the training vocabulary persisted by :meth:`train`."""
        words: List[str] = []
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((Path(directory) / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError, OSError) as error:
            logger.warning("NonsenseGuard: no stored vocabulary (%s); using the lexicon only", error)
        for lang in SUPPORTED_LANGUAGES:
            get_lemmatizer(lang)  # load the tables now, not on the first customer's message
        _stop_words()
        return cls(config, model_storage, resource, words)

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the vocabulary of the training examples (tokens, lemmas, entity values and
        lookup-table entries) and persists it with the model."""
        words: Set[str] = set()
        for message in training_data.training_examples:
            for token in message.get(TOKENS_NAMES[TEXT]) or []:
                words.update(_word_forms(token.text))
                lemma = token.get("lemma")
                if isinstance(lemma, str):
                    words.update(_word_forms(lemma))
            for entity in message.get(ENTITIES) or []:
                value = entity.get("value")
                if isinstance(value, str):
                    for part in value.split():
                        words.update(_word_forms(part))
        for table in training_data.lookup_tables or []:
            elements = table.get("elements")
            if isinstance(elements, list):
                for element in elements:
                    for part in str(element).split():
                        words.update(_word_forms(part))
        for synonym, value in (training_data.entity_synonyms or {}).items():
            for part in f"{synonym} {value}".split():
                words.update(_word_forms(part))
        self.vocabulary = Vocabulary(words)
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / VOCABULARY_FILE).write_text(
                json.dumps(sorted(self.vocabulary.training_words), ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Judges each message's words; nonsense becomes ``out_of_scope``."""
        for message in messages:
            if not isinstance(message.get(TEXT), str):
                continue
            verdict = judge(
                message_words(message),
                self.vocabulary,
                int(self._config["min_unknown_words"]),
                float(self._config["min_unknown_share"]),
            )
            intent = message.get(INTENT) or {}
            if puzzled(message.get(TEXT)):
                # "???" has no words, so no intent (DIET read it as "affirm"): the core fallback
                # asks what is unclear (actions/not_understood.py).
                message.set(INTENT, {INTENT_NAME_KEY: FALLBACK_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0},
                            add_to_output=True)
            elif verdict[NONSENSE]:
                verdict["overrode"] = intent.get(INTENT_NAME_KEY)
                if intent.get(INTENT_NAME_KEY) != OUT_OF_SCOPE:
                    message.set(INTENT, {INTENT_NAME_KEY: OUT_OF_SCOPE, PREDICTED_CONFIDENCE_KEY: 1.0},
                                add_to_output=True)
            message.set(NONSENSE, bool(verdict.pop(NONSENSE)), add_to_output=True)
            message.set(NONSENSE_CHECK, verdict, add_to_output=True)
        return messages


def puzzled(text: Any) -> bool:
    """Question marks and no words: "?", "???", "?!"."""
    return isinstance(text, str) and "?" in text and not any(ch.isalnum() for ch in text)


def _word_forms(text: str) -> List[str]:
    """Lower-case forms of a training token worth remembering (letters only, 2+)."""
    lower = text.lower().strip("'’-")
    return [lower] if len(lower) >= 2 and countable(lower) else []
