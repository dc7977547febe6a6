"""Language detection for a Dutch/English conversation, and the sticky choice of reply language.

Pure Python on top of langdetect: no Rasa import, so the NLU component and the action server
share it. Detection is deterministic (fixed seed) and is done per message; whether a message
may change the conversation's language is a separate decision (:func:`decide_language`),
because a customer who writes "ok" or "48213377" has not switched language.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

SUPPORTED_LANGUAGES: Tuple[str, ...] = ("nl", "en")
DEFAULT_LANGUAGE = "nl"

# A message must have at least this many words (of two or more letters) before it may change
# the conversation's language: "ok", "ja", "thanks", "top bedankt" never do.
MIN_WORDS_TO_SWITCH = 3
# ...and langdetect must be at least this sure, with the function words not disagreeing.
MIN_CONFIDENCE_TO_SWITCH = 0.90
# An unsupported language (French, German, ...) is only reported when langdetect is this sure.
MIN_CONFIDENCE_OTHER = 0.80
# Longer texts add nothing to the decision and only cost time.
MAX_CHARS_ANALYSED = 1000

_URL_OR_EMAIL = re.compile(r"(?:https?://\S+|www\.\S+|\S+@\S+)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)

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
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> Optional["Detection"]:
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
    """Deterministic nl/en detector: langdetect restricted to two profiles, plus function words.

    One instance is thread-safe and cheap to call; building it loads the langdetect profiles
    (about 60 ms), so keep one around (see :func:`get_detector`).
    """

    def __init__(self, seed: int = 0) -> None:
        from langdetect.detector_factory import DetectorFactory

        profiles_dir = Path(__import__("langdetect").__file__).parent / "profiles"
        self._two = DetectorFactory()
        self._two.load_json_profile(
            [(profiles_dir / lang).read_text(encoding="utf-8") for lang in SUPPORTED_LANGUAGES]
        )
        self._two.seed = seed
        self._all = DetectorFactory()
        self._all.load_profile(str(profiles_dir))
        self._all.seed = seed
        # langdetect's Detector objects are single-use; the factories are not thread-safe
        # while creating them.
        self._lock = threading.Lock()

    def detect(self, text: Optional[str]) -> Detection:
        """Detects the language of one message."""
        cleaned = _URL_OR_EMAIL.sub(" ", (text or "")[:MAX_CHARS_ANALYSED])
        original_words = _WORD.findall(cleaned)
        words = [w.lower() for w in original_words]
        # langdetect's profiles are case-sensitive: keep the customer's capitals.
        sample = " ".join(original_words)
        if not words:
            return Detection(language=None, confidence=0.0, reliable=False, words=0)

        requested = _requested_language(words, cleaned)
        if requested:
            return Detection(requested, 1.0, True, len(words), requested=True)

        votes = _function_word_votes(words)
        probabilities = self._probabilities(self._two, sample)
        guess = max(SUPPORTED_LANGUAGES, key=lambda lang: probabilities.get(lang, 0.0))
        confidence = probabilities.get(guess, 0.0)

        voted = max(SUPPORTED_LANGUAGES, key=lambda lang: votes[lang])
        other = "en" if voted == "nl" else "nl"
        if votes[voted] > votes[other]:
            # Function words are the stronger signal on short texts; langdetect on long ones.
            if voted != guess and (len(words) < 6 or confidence < 0.99):
                guess, confidence = voted, max(1.0 - confidence, 0.6)
            elif voted == guess:
                confidence = max(confidence, 0.6)

        agrees = votes[guess] >= votes["en" if guess == "nl" else "nl"]
        reliable = (
            len(words) >= MIN_WORDS_TO_SWITCH
            and confidence >= MIN_CONFIDENCE_TO_SWITCH
            and agrees
            and votes[guess] > 0
        )

        other_language = None
        if len(words) >= MIN_WORDS_TO_SWITCH and votes["nl"] + votes["en"] <= len(words) // 3:
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


def _function_word_votes(words: Iterable[str]) -> Dict[str, int]:
    votes = {lang: 0 for lang in SUPPORTED_LANGUAGES}
    for word in words:
        for lang in SUPPORTED_LANGUAGES:
            if word in _FUNCTION_WORDS[lang] and not all(
                word in _FUNCTION_WORDS[other] for other in SUPPORTED_LANGUAGES
            ):
                votes[lang] += 1
    return votes


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

