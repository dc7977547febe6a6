"""Property tests (hypothesis) of language detection and the form of address on arbitrary text.

Whatever a customer types (control characters, private-use and unassigned code points, emoji,
mixed scripts, very long messages), detection must not raise and must return a Detection that the
rest of the bot can rely on; the conversation's language stays "nl" or "en" and the register
"u" or "je". Deterministic (derandomize, no example database) so CI runs the same examples.
"""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.language import SUPPORTED_LANGUAGES, Detection, decide_language, decide_register, get_detector

FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# Every code point except surrogates (which cannot reach us as text: no UTF-8 encodes them),
# control characters included.
ANY_CHAR = st.characters(exclude_categories=("Cs",))
WORDS = st.sampled_from([
    "ik", "wil", "mijn", "bestelling", "retourneren", "the", "order", "is", "late", "please", "je", "jij",
    "u", "uw", "in", "English", "Nederlands", "48213377", "3511 AB", "👍", "medewerker", "agent",
    "bonjour", "merci", "Straße", "http://x.nl/a", "a@b.nl", "\u200b", "\x00", "\r\n", "\u202e",
])
MESSAGES = st.one_of(
    st.text(ANY_CHAR, max_size=300),
    st.lists(st.one_of(WORDS, st.text(ANY_CHAR, max_size=12)), max_size=40).map(" ".join),
    # Very long: a short piece repeated up to 100 kB.
    st.tuples(st.text(ANY_CHAR, min_size=1, max_size=20), st.integers(1, 5000)).map(lambda t: t[0] * t[1]),
    st.none(),
)


def assert_sane(detection: Detection) -> None:
    assert isinstance(detection, Detection)
    assert detection.language in SUPPORTED_LANGUAGES + (None,)
    assert isinstance(detection.confidence, float) and math.isfinite(detection.confidence)
    assert 0.0 <= detection.confidence <= 1.0
    assert isinstance(detection.reliable, bool) and isinstance(detection.requested, bool)
    assert isinstance(detection.words, int) and detection.words >= 0
    assert detection.other_language is None or isinstance(detection.other_language, str)
    if detection.words == 0:
        assert detection.language is None and not detection.reliable
    if detection.reliable or detection.requested:
        assert detection.language in SUPPORTED_LANGUAGES
    assert Detection.from_dict(detection.as_dict()) == detection


@FUZZ
@given(MESSAGES)
def test_detect_never_raises_and_returns_a_sane_detection(text):
    assert_sane(get_detector().detect(text))


@FUZZ
@given(MESSAGES, st.sampled_from([None, "nl", "en", "fr", ""]), st.sampled_from([None, "nl", "en", "de"]))
def test_the_conversation_language_is_always_dutch_or_english(text, current, hint):
    detection = get_detector().detect(text)
    assert decide_language(current, detection, hint) in SUPPORTED_LANGUAGES
    assert decide_language(current, None, hint) in SUPPORTED_LANGUAGES
    if current in SUPPORTED_LANGUAGES and not detection.reliable:
        assert decide_language(current, detection, hint) == current  # sticky


@FUZZ
@given(MESSAGES, st.sampled_from([None, "u", "je", "jij", ""]))
def test_the_register_is_always_u_or_je(text, current):
    register = decide_register(current, text)
    assert register in ("u", "je")
    if current in ("u", "je") and text is not None and not any(
            word in text.lower() for word in ("je", "jij", "jou", "u")):
        assert register == current


@FUZZ
@given(st.dictionaries(st.sampled_from(["language", "confidence", "reliable", "words", "other_language",
                                         "requested", "x"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                                 st.lists(st.integers(), max_size=2)), max_size=7))
def test_a_stored_detection_of_any_shape_is_rebuilt_or_ignored(data):
    rebuilt = Detection.from_dict(data)
    assert rebuilt is None or isinstance(rebuilt, Detection)
