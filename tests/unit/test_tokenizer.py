"""The bilingual spaCy tokenizer with lookup lemmas, as a Rasa component."""

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.lemmas import get_lemmatizer
from bot.nlu.language_detector import LANGUAGE_DETECTION, LanguageDetector
from bot.nlu.tokenizer import BilingualLemmaTokenizer, tokenize_text


@pytest.fixture(scope="module")
def pipeline():
    detector = LanguageDetector()
    tokenizer = BilingualLemmaTokenizer(BilingualLemmaTokenizer.get_default_config())

    def run(text):
        message = Message(data={TEXT: text})
        detector.process([message])
        tokenizer.process([message])
        return message

    return run


def lemmas(message):
    return [token.lemma for token in message.get(TOKENS_NAMES[TEXT])]


@pytest.mark.parametrize(
    "a, b",
    [("bestellingen", "bestelling"), ("werkt", "werken"), ("pakketten", "pakket"), ("storingen", "storing"),
     ("facturen", "factuur"), ("verhuist", "verhuizen"), ("doet", "doen")],
)
def test_dutch_forms_share_a_lemma(a, b):
    nl = get_lemmatizer("nl")
    assert nl.lemma(a) == nl.lemma(b)


@pytest.mark.parametrize("a, b", [("orders", "order"), ("working", "works"), ("refunds", "refund"), ("charged", "charge")])
def test_english_forms_share_a_lemma(a, b):
    en = get_lemmatizer("en")
    assert en.lemma(a) == en.lemma(b)


def test_dutch_function_words_keep_their_own_lemma():
    nl = get_lemmatizer("nl")
    assert [nl.lemma(w) for w in ("het", "niet", "mijn")] == ["het", "niet", "mijn"]


def test_message_is_tokenised_in_its_own_language(pipeline):
    message = pipeline("mijn bestellingen zijn niet geleverd")
    assert message.get(LANGUAGE_DETECTION)["language"] == "nl"
    assert "bestelling" in lemmas(message)
    assert "leveren" in lemmas(message)
    message = pipeline("my orders were never delivered")
    assert message.get(LANGUAGE_DETECTION)["language"] == "en"
    assert "order" in lemmas(message) and "deliver" in lemmas(message)


def test_entities_survive_tokenisation(pipeline):
    text = "mijn e-mail is jan.de.vries@ziggo.nl en postcode 3511AB, order 2024118832"
    tokens = pipeline(text).get(TOKENS_NAMES[TEXT])
    words = [t.text for t in tokens]
    assert "jan.de.vries@ziggo.nl" in words and "3511AB" in words and "2024118832" in words
    for token in tokens:
        assert text[token.start:token.end] == token.text


def test_punctuation_is_dropped_but_offsets_stay_right(pipeline):
    text = "hoi!! waar is m'n pakket???"
    for token in pipeline(text).get(TOKENS_NAMES[TEXT]):
        assert text[token.start:token.end] == token.text
        assert token.text.strip("!?") == token.text


@pytest.mark.parametrize("text", ["👍", "😡😡", "!!!", "48213377"])
def test_texts_without_words_still_get_a_token(pipeline, text):
    assert pipeline(text).get(TOKENS_NAMES[TEXT])


def test_empty_text_gives_no_tokens():
    assert tokenize_text("", "nl") == []
    assert tokenize_text("   ", "en") == []
