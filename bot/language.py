"""Language detection for a Dutch/English conversation, and the sticky choice of reply language.

Pure Python on top of langdetect: no Rasa import, so the NLU component and the action server
share it. Detection is deterministic (fixed seed) and is done per message; whether a message
may change the conversation's language is a separate decision (:func:`decide_language`),
because a customer who writes "ok" or "48213377" has not switched language.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Container, Dict, Iterable, List, Optional, Tuple

from contract.slots import DEFAULT_LANGUAGE, LANGUAGES

# The languages the assistant answers in, and the one it starts with (the contract's).
SUPPORTED_LANGUAGES: Tuple[str, ...] = LANGUAGES

# A message must have at least this many words (of two or more letters) before it may change
# the conversation's language: "ok", "ja", "thanks", "top bedankt" never do.
MIN_WORDS_TO_SWITCH = 3
# ...and langdetect must be at least this sure, with the function words not disagreeing.
MIN_CONFIDENCE_TO_SWITCH = 0.90
# An unsupported language (French, German, ...) is only reported when langdetect is this sure.
MIN_CONFIDENCE_OTHER = 0.80
# The languages, besides ours, that "you wrote in another language" is decided among: those
# customers of a Dutch/Belgian/British shop most often write in, and the neighbours of Dutch
# and English that langdetect would otherwise confuse with them. Fewer profiles, less memory
# (all 55 cost about 65 MB per process); a language not listed still comes out as "other".
OTHER_LANGUAGE_PROFILES: Tuple[str, ...] = (
    "af", "ar", "bg", "cs", "da", "de", "el", "en", "es", "fi", "fr", "hr", "hu", "it", "nl", "no",
    "pl", "pt", "ro", "ru", "sk", "so", "sv", "tr", "uk", "zh-cn",
)
# Longer texts add nothing to the decision and only cost time.
MAX_CHARS_ANALYSED = 1000

# The word-level vote: an exclusive function word weighs more than a word of the lemma tables;
# a word that looks like a name or title counts for little.
FUNCTION_WORD_WEIGHT = 2.0
LEXICON_WORD_WEIGHT = 1.0
NAME_WEIGHT = 0.5
# A vote this clear (and not contradicted) needs no langdetect.
DECISIVE_MARGIN = 3.0
# langdetect's log-odds are capped: on short texts it is often very sure and wrong.
LANGDETECT_CAP = 2.0
# Below this share of words either vocabulary knows, the message may be in another language.
MIN_SHARE_KNOWN = 0.5
# A message may only switch the conversation's language when most of its words are known to
# one of the vocabularies: in gibberish ("flurb zanq the wibble") the one real word decides
# the guess, and the customer has not changed language.
MIN_SHARE_KNOWN_TO_SWITCH = 0.6
# Frequent words of the other languages customers write in that are neither Dutch nor English.
# The lemma tables know some of them (the Dutch one holds "ist", "nicht", "immer"), so a German
# sentence looks "known"; two of these send it to the all-languages check anyway.
_FOREIGN_MARKERS = frozenset(
    """
    ist nicht und ich meine mein bitte immer leider habe haben wurde keine auch danke guten
    bestellung sind noch
    est une les des mon votre vous nous pour avec toujours depuis bonjour merci commande
    n'est c'est suis
    los las por para pero tengo gracias hola pedido todavía está qué muy
    bir ve bu için değil merhaba teşekkür siparişim
    """.split()
)

_URL_OR_EMAIL = re.compile(r"(?:https?://\S+|www\.\S+|\S+@\S+)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_QUOTED = re.compile(r'"[^"]+"|“[^”]+”|„[^”“]+[”“]|«[^»]+»')
_SENTENCE_END = ".!?\n"

# Very frequent words that settle short messages langdetect cannot judge. A word that is
# common in both languages ("is", "in", "we", "hi"/"hoi" aside) is left out on purpose.
_FUNCTION_WORDS: Dict[str, frozenset] = {
    "nl": frozenset(
        """
        ik jij je jou jouw u uw wij jullie ze zij hij mijn mij me ons onze het de een een
        niet geen wel nog al ook maar want dus dan toen als of dat die deze dit wat waar
        wanneer waarom hoe wie welke met voor van naar bij uit over tot door zonder tegen
        en heb hebt heeft hebben ben bent zijn was waren wordt worden kan kun kunt kunnen
        wil wilt willen moet moeten mag mogen zou zouden graag alstublieft alsjeblieft
        bedankt dankjewel dankuwel dank hoi hallo hallootjes goedemorgen goedemiddag
        goedenavond doei dag ja jawel nee neen klopt precies inderdaad oke oké prima top
        gij ge da ni nie amai allee awel bestelling pakket storing kapot werkt
        """.split()
    ),
    "en": frozenset(
        """
        i you your yours we they he she my me our us it the a an not no yes yeah yep nope
        but so then when if or that this these those what where why how who which with
        for from to at by about into without against and have has had am are was were
        been do does did can could would should will shall want please thanks thank
        thx cheers hello hey bye goodbye morning evening afternoon okay sure correct
        order parcel package broken working doesn't don't can't isn't
        """.split()
    ),
}

# "In English please", "spreekt u Nederlands?": naming a language is a clear request.
_LANGUAGE_NAMES = {
    "nl": re.compile(r"\b(nederlands|dutch|vlaams|flemish|holland(?:s|ais))\b", re.IGNORECASE),
    "en": re.compile(r"\b(english|engels|anglais|englisch)\b", re.IGNORECASE),
}
_MAX_WORDS_FOR_LANGUAGE_REQUEST = 8


@dataclass(frozen=True)
class Detection:
    """What one message says about its language.

    Attributes:
        language: best guess among the supported languages, None when the message has no
            words at all (digits, emoji, punctuation).
        confidence: how sure the guess is, 0..1.
        reliable: True when the message is clear enough to change the conversation language.
        words: number of words of two or more letters.
        other_language: an unsupported language the message is clearly written in
            ("fr", "de", ...), else None.
        requested: True when the customer explicitly asked for a language.
    """

    language: Optional[str]
    confidence: float
    reliable: bool
    words: int
    other_language: Optional[str] = None
    requested: bool = False

    def as_dict(self) -> Dict[str, Any]:
        """The detection as a JSON-serialisable dict (stored in the parse data)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> Optional[Detection]:
        """Rebuilds a detection from :meth:`as_dict` output; None for missing/invalid data."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                language=data.get("language"),
                confidence=float(data.get("confidence") or 0.0),
                reliable=bool(data.get("reliable")),
                words=int(data.get("words") or 0),
                other_language=data.get("other_language"),
                requested=bool(data.get("requested")),
            )
        except (TypeError, ValueError):
            return None


class LanguageDetector:
    """Deterministic nl/en detector: a word-level lexicon vote, with langdetect when it is unsure.

    Every word votes for the language whose vocabulary it belongs to (function words above,
    and the lemma tables of ``spacy-lookups-data``, read from the installed package); a word
    both vocabularies know says nothing. Words that look like names or titles (capitalised in
    the middle of a sentence, or in quotes) count for little: "speel Paul Simon af" is Dutch
    however many English names it holds. langdetect (restricted to nl/en) only runs when the
    vote is not clear, and the all-languages pass only when the message is mostly words that
    neither vocabulary knows (French, German, ...).

    One instance is thread-safe and cheap to call; building it loads the langdetect profiles
    and the word lists (about a second), so keep one around (see :func:`get_detector`).
    """

    def __init__(self, seed: int = 0) -> None:
        from importlib import resources

        from langdetect.detector_factory import DetectorFactory

        profiles_dir = resources.files("langdetect") / "profiles"
        self._two = DetectorFactory()
        self._two.load_json_profile(
            [(profiles_dir / lang).read_text(encoding="utf-8") for lang in SUPPORTED_LANGUAGES]
        )
        self._two.seed = seed
        self._all = DetectorFactory()
        self._all.load_json_profile(
            [(profiles_dir / lang).read_text(encoding="utf-8") for lang in OTHER_LANGUAGE_PROFILES]
        )
        self._all.seed = seed
        self._lexicon = _load_lexicon()
        # langdetect's Detector objects are single-use; the factories are not thread-safe
        # while creating them.
        self._lock = threading.Lock()

    def detect(self, text: Optional[str]) -> Detection:
        """Detects the language of one message."""
        cleaned = _URL_OR_EMAIL.sub(" ", (text or "")[:MAX_CHARS_ANALYSED])
        tokens = _tokens(cleaned)
        words = [token.lower for token in tokens]
        if not words:
            return Detection(language=None, confidence=0.0, reliable=False, words=0)

        requested = _requested_language(words, cleaned)
        if requested:
            return Detection(requested, 1.0, True, len(words), requested=True)

        scores = {lang: 0.0 for lang in SUPPORTED_LANGUAGES}  # weighted evidence
        plain = {lang: 0.0 for lang in SUPPORTED_LANGUAGES}  # the same, names left out
        known = 0
        for token in tokens:
            lang, strength = self._vote(token.lower)
            if strength:
                known += 1
            if lang is None:
                continue
            scores[lang] += strength * token.weight
            if not token.name:
                plain[lang] += strength
        margin = scores["nl"] - scores["en"]
        loser = min(scores.values())

        if abs(margin) >= DECISIVE_MARGIN and loser <= abs(margin) * 0.25:
            evidence = margin
        else:
            # Not clear from the words alone: let langdetect weigh the letters, on the words
            # that are not names when there are any (its profiles are case-sensitive, so the
            # customer's capitals are kept).
            content = [t.text for t in tokens if not t.name] or [t.text for t in tokens]
            probabilities = self._probabilities(self._two, " ".join(content))
            p_nl = probabilities.get("nl", 1.0 - probabilities.get("en", 0.5))
            p_nl = min(max(p_nl, 1e-4), 1 - 1e-4)
            letters = math.log(p_nl / (1.0 - p_nl))
            letters = max(-LANGDETECT_CAP, min(LANGDETECT_CAP, letters))
            # langdetect is unsteady on a word or two; the vote weighs more there.
            evidence = margin + letters * min(1.0, len(content) / 6.0)
        guess = "nl" if evidence > 0 or (evidence == 0 and margin >= 0) else "en"
        other = "en" if guess == "nl" else "nl"
        confidence = 1.0 / (1.0 + math.exp(-abs(evidence)))

        reliable = (
            len(words) >= MIN_WORDS_TO_SWITCH
            and confidence >= MIN_CONFIDENCE_TO_SWITCH
            and plain[guess] > plain[other]
            and known >= len(words) * MIN_SHARE_KNOWN_TO_SWITCH
        )

        other_language = None
        foreign = sum(word in _FOREIGN_MARKERS for word in words)
        if len(words) >= MIN_WORDS_TO_SWITCH and (known < len(words) * MIN_SHARE_KNOWN or foreign >= 2):
            sample = " ".join(t.text for t in tokens)
            top, top_probability = self._top(self._all, sample)
            if top not in SUPPORTED_LANGUAGES + ("af",) and top_probability >= MIN_CONFIDENCE_OTHER:
                other_language, reliable = top, False

        return Detection(
            language=guess,
            confidence=round(confidence, 4),
            reliable=reliable,
            words=len(words),
            other_language=other_language,
        )

    def _vote(self, word: str) -> Tuple[Optional[str], float]:
        """(language, strength) of one lower-cased word; strength 0 for an unknown word."""
        in_function = [lang for lang in SUPPORTED_LANGUAGES if word in _FUNCTION_WORDS[lang]]
        if len(in_function) == 1:
            return in_function[0], FUNCTION_WORD_WEIGHT
        if in_function:
            return None, 1.0
        in_lexicon = [lang for lang in SUPPORTED_LANGUAGES if word in self._lexicon[lang]]
        if len(in_lexicon) == 1:
            return in_lexicon[0], LEXICON_WORD_WEIGHT
        return None, 1.0 if in_lexicon else 0.0

    def _probabilities(self, factory: Any, text: str) -> Dict[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        with self._lock:
            detector = factory.create()
        detector.append(text)
        try:
            return {item.lang: item.prob for item in detector.get_probabilities()}
        except LangDetectException:
            return {}

    def _top(self, factory: Any, text: str) -> Tuple[Optional[str], float]:
        probabilities = self._probabilities(factory, text)
        if not probabilities:
            return None, 0.0
        lang = max(probabilities, key=probabilities.__getitem__)
        return lang, probabilities[lang]


@dataclass(frozen=True)
class _Token:
    text: str  # as written
    lower: str
    name: bool  # looks like (part of) a name or title
    weight: float  # how much its vote counts


def _tokens(text: str) -> List[_Token]:
    """The words of a message, each weighted by how much it may say about the language.

    A word is taken for part of a name or title when it is capitalised but does not start a
    sentence, when it is inside double quotes, or when it is a short lower-case word between
    two such words ("Lord of the Rings"). A run of name words counts as one word, at
    :data:`NAME_WEIGHT`: "speel Queen of the Night af" is Dutch, however long the title. In a
    message (nearly) all in capitals (shouting) the capitals say nothing, and neither do quotes
    around the whole message. A sentence-initial word is never taken for a name.
    """
    quoted = [False] * (len(text) + 1)
    for match in _QUOTED.finditer(text):
        for i in range(match.start(), match.end()):
            quoted[i] = True
    matches = list(_WORD.finditer(text))
    # A message quoted as a whole, or shouted in capitals: the quotes or capitals say nothing.
    use_quotes = sum(quoted[m.start()] for m in matches) < 0.8 * len(matches)
    use_capitals = sum(m.group().isupper() for m in matches) < 0.9 * len(matches)
    found: List[Tuple[str, bool]] = []
    for match in matches:
        word = match.group()
        before = text[: match.start()].rstrip()
        starts_sentence = not before or before[-1] in _SENTENCE_END
        capital = use_capitals and word[0].isupper() and not starts_sentence
        found.append((word, capital or (use_quotes and quoted[match.start()])))
    names = [name for _, name in found]
    for i in range(1, len(found) - 1):
        word = found[i][0]
        if not names[i] and names[i - 1] and word.islower() and len(word) <= 4 and (
            found[i + 1][1] or (i + 2 < len(found) and found[i + 2][1])
        ):
            names[i] = True
    weights = [1.0] * len(found)
    i = 0
    while i < len(found):
        if names[i]:
            j = i
            while j < len(found) and names[j]:
                j += 1
            for k in range(i, j):
                weights[k] = NAME_WEIGHT / (j - i)
            i = j
        else:
            i += 1
    return [_Token(word, word.lower(), names[i], weights[i]) for i, (word, _) in enumerate(found)]


@lru_cache(maxsize=1)
def _load_lexicon() -> Dict[str, Container[str]]:
    """Every word form and lemma of spacy-lookups-data's nl and en tables, lower-cased.

    Read straight from the installed package (no spaCy, nothing downloaded).
    """
    import gzip
    import json

    try:
        import spacy_lookups_data
    except ImportError:  # pragma: no cover - a dependency of the bot; the function words remain
        return {lang: frozenset() for lang in SUPPORTED_LANGUAGES}

    lexicon: Dict[str, Container[str]] = {}
    for lang in SUPPORTED_LANGUAGES:
        words: set = set()
        for table in ("lemma_lookup", "lemma_index", "lemma_exc"):
            path = Path(str(spacy_lookups_data.get_file(f"{lang}_{table}.json.gz")))
            if not path.exists():
                continue
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                data = json.load(handle)
            if table == "lemma_lookup":
                words.update(data)
                words.update(data.values())
            elif table == "lemma_index":
                for forms in data.values():
                    words.update(forms)
            else:
                for forms in data.values():
                    words.update(forms)
                    for lemmas in forms.values():
                        words.update(lemmas)
        lexicon[lang] = WordSet(word.lower() for word in words if word.isalpha())
    return lexicon


class WordSet:
    """A read-only set of about a million words in a few MB: sorted 64-bit hashes in numpy.

    A frozenset of the same strings costs some 150 MB in every Rasa process. Python's string
    hash is stable within a process, which is all a set built at start-up needs; two words
    sharing a 64-bit hash in a million is a chance of about 1 in 10^7.
    """

    def __init__(self, words: Iterable[str]) -> None:
        import numpy

        self._hashes = numpy.unique(numpy.fromiter((hash(word) for word in words), dtype=numpy.int64))
        self._key = numpy.int64

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        key = self._key(hash(word))
        index = int(self._hashes.searchsorted(key))
        return index < len(self._hashes) and self._hashes[index] == key

    def __len__(self) -> int:
        return len(self._hashes)


def _requested_language(words: List[str], text: str) -> Optional[str]:
    if len(words) > _MAX_WORDS_FOR_LANGUAGE_REQUEST:
        return None
    named = [lang for lang, pattern in _LANGUAGE_NAMES.items() if pattern.search(text)]
    return named[0] if len(named) == 1 else None


@lru_cache(maxsize=1)
def get_detector() -> LanguageDetector:
    """The process-wide detector (built on first use, never at import time)."""
    return LanguageDetector()


def decide_language(
    current: Optional[str],
    detection: Optional[Detection],
    channel_hint: Optional[str] = None,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """Chooses the conversation's language after one customer message.

    The language is sticky: only a reliable detection (a clear sentence, or an explicit
    request such as "in English please") changes it. Until the conversation has a language,
    the channel's hint (page language, phone country code) comes first, then the best guess
    from the message, then the default.

    Args:
        current: the conversation's language so far (None at the start).
        detection: the detection of the latest message, if any.
        channel_hint: a language suggested by the channel ("nl", "en"), if any.
        default: the language used when nothing else is known.

    Returns:
        "nl" or "en".
    """
    if detection is not None and detection.reliable and detection.language in SUPPORTED_LANGUAGES:
        return detection.language
    if current in SUPPORTED_LANGUAGES:
        return current
    if channel_hint in SUPPORTED_LANGUAGES:
        return channel_hint
    if detection is not None and detection.language in SUPPORTED_LANGUAGES and detection.confidence >= 0.6:
        return detection.language
    return default


# "jullie" addresses the company, not the person, so it says nothing about register.
_INFORMAL = re.compile(r"\b(jij|jou|jouw|je)\b", re.IGNORECASE)
_FORMAL = re.compile(r"\b(u|uw)\b", re.IGNORECASE)


def decide_register(current: Optional[str], text: Optional[str]) -> str:
    """Dutch form of address: "u" unless the customer addresses us with "je/jij".

    Returns "je" or "u"; a message without either keeps the current register.
    """
    text = text or ""
    informal = bool(_INFORMAL.search(text))
    formal = bool(_FORMAL.search(text))
    if informal and not formal:
        return "je"
    if formal and not informal:
        return "u"
    return current if current in ("u", "je") else "u"


def language_from_phone_number(phone: Optional[str]) -> Optional[str]:
    """A first guess from a phone number's country code: +31/+32 Dutch, +44/+1 English."""
    digits = re.sub(r"[^\d+]", "", phone or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith(("+31", "+32")):
        return "nl"
    if digits.startswith(("+44", "+1", "+353")):
        return "en"
    return None


def language_from_locale(locale: Optional[str]) -> Optional[str]:
    """A first guess from a page or browser locale such as "nl-BE" or "en_GB"."""
    if not isinstance(locale, str):
        return None
    code = locale.strip().lower().replace("_", "-").split("-")[0]
    return code if code in SUPPORTED_LANGUAGES else None


def channel_language_hint(metadata: Optional[Dict[str, Any]]) -> Optional[str]:
    """The language the channel suggests, from message metadata.

    Understands ``{"language": "en"}``, ``{"locale": "nl-BE"}`` (web pages) and
    ``{"phone": "+31..."}`` (WhatsApp).
    """
    if not isinstance(metadata, dict):
        return None
    for key in ("language", "locale", "page_language"):
        hint = language_from_locale(metadata.get(key))
        if hint:
            return hint
    return language_from_phone_number(metadata.get("phone") or metadata.get("wa_id"))

