"""NLU components: the intent of a message is read without the identity details in it.

"where's my dyson?? customer 60418825 postcode SW1A 1AA" is a question about an order that also
identifies the customer. Read whole, the numbers and the words around them ("customer",
"postcode") look like ``inform``, the intent of a message that only gives identity details, and
the question is lost. Identity details say who is writing, never what about, so:

* ``IdentityMask`` (right after the language detector, before the tokenizer) removes the spans
  the entity regexes of ``customer_number``, ``postcode``, ``email`` and ``phone_number`` find,
  together with the words that label them ("klantnummer", "my postcode is"), when what is left
  still says something: at least ``min_content_words`` words that are not labels or fillers.
  Then the tokenizer, featurizers and classifiers see "where's my dyson??". A message that is
  only identity details ("mijn klantnummer is 39481726", "hoi, 39481726 3581 KP") is left whole
  and stays ``inform`` (or a greeting that ``IdentityIntent`` turns into ``inform``).
* ``RestoreText`` (after the intent classifiers, before the entity extractors) puts the original
  text back, so entities are found in, and the tracker stores, what the customer wrote.

The same masking is applied to the training examples, so training and prediction see the same
kind of text. The patterns are taken from the training data's regexes (data/nlu/entities.yml) at
training time and stored with the model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Pattern, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.component import ConfigOnlyComponent

logger = logging.getLogger(__name__)

IDENTITY_ENTITIES = ("customer_number", "postcode", "email", "phone_number")
ORIGINAL_TEXT = "text_with_identity"
MASKED = "identity_masked"
IDENTITY_ONLY = "identity_only"
PATTERNS_FILE = "identity_patterns.json"

# Words that label the customer number and postcode, in both languages: removed with them.
# ("e-mail", "phone", "adres" stay: they say which contact detail a change is about.)
LABELS = frozenset(
    """
    klant klantnr klantnummer klantennummer klantnummmer kltnr customer client accountnummer
    accountnr postcode post code zip zipcode postal postnummer
    """.split()
)
# Words that carry no request on their own: pronouns, articles, verbs of "this is", and
# "number", which is kept ("my phone number changed") but says nothing alone.
FILLERS = frozenset(
    """
    ik ben is mijn m'n mn me mij de het een en of dat dit die hier zijn mijne u uw je jouw
    i am i'm im is my me the a an and or this that here it's its it is are was of for with
    hoi hi hey hallo hello dag goedemorgen goedemiddag goedenavond morning afternoon evening
    good hiya yo ok oke okay ja yes sure prima graag please pls aub svp dus so also ook
    staat stond was also nog even ff wel
    number nummer nr no num
    """.split()
)
_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*", re.UNICODE)


def content_words(text: str) -> List[str]:
    """The words of ``text`` that are neither identity labels nor fillers (lower case)."""
    words = [word.lower().strip("'’-") for word in _WORD.findall(text)]
    return [word for word in words if len(word) >= 2 and word not in LABELS and word not in FILLERS]


def split_identity(text: str, patterns: Iterable[Pattern[str]]) -> Tuple[bool, str]:
    """(whether ``text`` holds identity details, the text without them)."""
    spans = sorted({match.span() for pattern in patterns for match in pattern.finditer(text)})
    if not spans:
        return False, text
    pieces, cursor = [], 0
    for start, end in spans:
        if start < cursor:  # overlapping matches: keep the earlier one's end
            cursor = max(cursor, end)
            continue
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    return True, " ".join(piece.strip() for piece in pieces if piece.strip())


def _without_labels(remainder: str) -> Optional[str]:
    """The remainder without the identity labels and the separators they leave behind."""
    kept = [
        token for token in re.split(r"(\s+)", remainder)
        if token.isspace() or token.lower().strip(",.:;!?()'’-") not in LABELS
    ]
    masked = re.sub(r"(?:\s*[,;:])+(?=\s*[,;:.!?]|$)", "", "".join(kept))  # orphaned separators
    return re.sub(r"\s+", " ", masked).strip(" ,;:") or None


def read_identity(text: str, patterns: Iterable[Pattern[str]], min_content_words: int = 2) -> Tuple[bool, Optional[str]]:
    """(whether ``text`` is identity details and nothing else, the text to read the intent from
    or None to keep it whole). Nothing else: their labels and fillers at most ("lucy@example.com",
    "klantnummer 39481726"). Kept whole: no identity details, or fewer than ``min_content_words``
    content words besides them."""
    found, remainder = split_identity(text, patterns)
    if not found:
        return False, None
    content = len(content_words(remainder))
    if content == 0:
        return True, None
    return False, _without_labels(remainder) if content >= min_content_words else None


def mask_identity(text: str, patterns: Iterable[Pattern[str]], min_content_words: int = 2) -> Optional[str]:
    """``text`` without its identity details and their labels, or None to keep it whole."""
    return read_identity(text, patterns, min_content_words)[1]


def identity_only(text: str, patterns: Iterable[Pattern[str]]) -> bool:
    """True when ``text`` is identity details and nothing else."""
    return read_identity(text, patterns)[0]


def _compile(raw: Dict[str, List[str]]) -> List[Pattern[str]]:
    compiled: List[Pattern[str]] = []
    for name, patterns in raw.items():
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as error:
                logger.warning("IdentityMask: pattern of %s does not compile (%s): %s", name, error, pattern)
    return compiled


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class IdentityMask(GraphComponent):
    """Removes identity details from the text the intent is read from (see module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {"entities": list(IDENTITY_ENTITIES), "min_content_words": 2}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        patterns: Optional[Dict[str, List[str]]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **(config or {})}
        self._model_storage = model_storage
        self._resource = resource
        self.raw_patterns: Dict[str, List[str]] = patterns or {}
        self.patterns = _compile(self.raw_patterns)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> IdentityMask:
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
    ) -> IdentityMask:
        """Loads the patterns stored by :meth:`train`."""
        patterns: Dict[str, List[str]] = {}
        try:
            with model_storage.read_from(resource) as directory:
                patterns = json.loads((Path(directory) / PATTERNS_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError, OSError) as error:
            logger.warning("IdentityMask: no stored patterns (%s); messages are read whole", error)
        return cls(config, model_storage, resource, patterns)

    def train(self, training_data: TrainingData) -> Resource:
        """Takes the identity entities' regexes from the training data and stores them."""
        wanted = set(self._config["entities"])
        patterns: Dict[str, List[str]] = {}
        for regex in training_data.regex_features or []:
            if regex.get("name") in wanted:
                patterns.setdefault(regex["name"], []).append(regex["pattern"])
        missing = wanted - set(patterns)
        if missing:
            logger.warning("IdentityMask: no regex in the training data for %s", ", ".join(sorted(missing)))
        self.raw_patterns, self.patterns = patterns, _compile(patterns)
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / PATTERNS_FILE).write_text(json.dumps(patterns, ensure_ascii=False), encoding="utf-8")
        return self._resource

    def _mask(self, message: Message) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str) or message.get(ORIGINAL_TEXT) is not None:
            return
        only, masked = read_identity(text, self.patterns, int(self._config["min_content_words"]))
        if only:
            message.set(IDENTITY_ONLY, True, add_to_output=True)
        elif masked is not None:
            message.set(ORIGINAL_TEXT, text)
            message.set(TEXT, masked)
            message.set(MASKED, True, add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Masks the training examples the same way as the messages at prediction time."""
        for message in training_data.training_examples:
            self._mask(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Masks each message whose identity details come with something else to say."""
        for message in messages:
            self._mask(message)
        return messages


def restore(message: Message) -> None:
    """Puts back the text IdentityMask replaced."""
    original = message.get(ORIGINAL_TEXT)
    if isinstance(original, str):
        message.set(TEXT, original)
        message.data.pop(ORIGINAL_TEXT, None)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RestoreText(ConfigOnlyComponent):
    """Restores the text IdentityMask replaced, before the entity extractors run."""

    def process(self, messages: List[Message]) -> List[Message]:
        """Restores each message's text. (In training the examples stay masked: only the intent
        classifiers and the regex/lookup extractors train after this, and neither reads the text.)"""
        for message in messages:
            restore(message)
        return messages
