"""Language detection per message, and the sticky conversation language."""

import pytest

from bot.language import (
    Detection,
    channel_language_hint,
    decide_language,
    decide_register,
    get_detector,
)


@pytest.fixture(scope="module")
def detect():
    return get_detector().detect


@pytest.mark.parametrize(
    "text, language",
    [
        ("mijn internet doet het al twee dagen niet", "nl"),
        ("waar blijft mijn bestelling, ik wacht al een week", "nl"),
        ("Kunt u mij vertellen wanneer mijn pakket komt?", "nl"),
        ("ik heb mijn pakske nog altijd ni gekregen", "nl"),
        ("my internet is not working since yesterday", "en"),
        ("the hairdryer i buy from you is broken now what i do", "en"),
        ("Could you tell me when my parcel will arrive?", "en"),
        ("please to help me my wifi is down", "en"),
    ],
)
def test_clear_sentences_are_detected_reliably(detect, text, language):
    detection = detect(text)
    assert detection.language == language
    assert detection.reliable


@pytest.mark.parametrize("text", ["ok", "ja", "thanks", "48213377", "👍", "top bedankt", "nee", "yes", "jan@example.nl", ""])
def test_short_or_ambiguous_messages_are_never_reliable(detect, text):
    assert not detect(text).reliable


@pytest.mark.parametrize("text", ["flurb zanq the wibble", "blorp de snirkel van gnarf", "snorf het blib van de wub"])
def test_gibberish_with_one_real_word_never_switches(detect, text):
    # The one function word decides the guess, but the customer has not changed language.
    assert not detect(text).reliable


@pytest.mark.parametrize("text", ["48213377", "👍", "😡😡😡", "06-12345678", "   ", "!!!"])
def test_messages_without_words_have_no_language(detect, text):
    assert detect(text).language is None


def test_detection_is_deterministic(detect):
    text = "ik heb een problem with my order"
    assert len({detect(text) for _ in range(20)}) == 1


@pytest.mark.parametrize(
    "text, language",
    [("in English please", "en"), ("can we speak English", "en"), ("spreekt u Nederlands?", "nl"),
     ("in het nederlands aub", "nl"), ("Engels graag", "en")],
)
def test_naming_a_language_is_an_explicit_switch(detect, text, language):
    detection = detect(text)
    assert detection.requested and detection.reliable and detection.language == language


def test_an_unsupported_language_is_reported_not_adopted(detect):
    detection = detect("Bonjour, je voudrais savoir où est ma commande s'il vous plaît")
    assert detection.other_language == "fr"
    assert not detection.reliable


def test_huge_message_is_handled_quickly_and_correctly(detect):
    text = "mijn internet werkt niet en de monteur is niet gekomen " * 1200  # ~60 kB
    assert detect(text).language == "nl"


@pytest.mark.parametrize("short", ["ok", "ja", "thanks", "48213377", "👍", "ok thx", "nee"])
@pytest.mark.parametrize("current", ["nl", "en"])
def test_short_messages_never_flip_the_conversation(detect, short, current):
    assert decide_language(current, detect(short)) == current


def test_a_clear_switch_changes_the_language_and_it_sticks(detect):
    language = "nl"
    conversation = [
        ("hoi, mijn bestelling is nog niet binnen", "nl"),
        ("ok", "nl"),
        ("sorry, can we continue in English? my parcel did not arrive", "en"),
        ("ja", "en"),
        ("48213377", "en"),
        ("👍", "en"),
        ("wacht, ik typ liever in het Nederlands als dat kan", "nl"),
        ("thanks", "nl"),
    ]
    for text, expected in conversation:
        language = decide_language(language, detect(text))
        assert language == expected, text


def test_mixed_message_does_not_flip(detect):
    assert decide_language("nl", detect("ik heb een problem with my order")) == "nl"


def test_first_message_uses_channel_hint_when_unclear(detect):
    assert decide_language(None, detect("hi"), channel_hint="nl") == "nl"
    assert decide_language(None, detect("ok"), channel_hint="en") == "en"
    # A clear first sentence beats the hint.
    assert decide_language(None, detect("my internet is not working at all"), channel_hint="nl") == "en"


def test_first_message_without_hint_takes_the_best_guess(detect):
    assert decide_language(None, detect("hello")) == "en"
    assert decide_language(None, detect("hoi")) == "nl"
    assert decide_language(None, Detection(None, 0.0, False, 0)) == "nl"


@pytest.mark.parametrize(
    "metadata, hint",
    [({"locale": "en-GB"}, "en"), ({"language": "nl"}, "nl"), ({"page_language": "nl_BE"}, "nl"),
     ({"phone": "+31612345678"}, "nl"), ({"phone": "+32470123456"}, "nl"), ({"phone": "+447700900123"}, "en"),
     ({"locale": "fr-FR"}, None), ({}, None), (None, None), ({"locale": 42}, None)],
)
def test_channel_hints(metadata, hint):
    assert channel_language_hint(metadata) == hint


@pytest.mark.parametrize(
    "current, text, register",
    [("u", "kun je me helpen", "je"), ("je", "kunt u mij helpen", "u"), ("je", "ok", "je"),
     ("u", "waar is mijn pakket", "u"), (None, "hoi", "u"), ("u", "heb jij mijn pakket gezien", "je")],
)
def test_register_follows_the_customer(current, text, register):
    assert decide_register(current, text) == register


def test_detection_round_trips_through_parse_data(detect):
    detection = detect("waar is mijn bestelling")
    assert Detection.from_dict(detection.as_dict()) == detection
    assert Detection.from_dict(None) is None
    assert Detection.from_dict({"confidence": "not a number"}) is None


# Names and titles: customers mention products, shows and places in the other language.
@pytest.mark.parametrize(
    "text",
    [
        "Bestel nog eens The Lord of the Rings Trilogy Box",
        "Is Pride and Prejudice and Zombies al verzonden",
        "Graag The Complete Works of William Shakespeare retour",
        "Wordt Harry Potter and the Goblet of Fire morgen bezorgd?",
        "De Logitech Wireless Gaming Mouse is kapot",
        "Mijn Apple Magic Keyboard with Touch ID doet het niet",
        "kan ik de Lord of the Rings Extended Edition nog retourneren",
        "Ik wil de Sony Noise Cancelling Headphones terugsturen",
    ],
)
def test_dutch_with_english_names_and_titles_is_dutch(detect, text):
    detection = detect(text)
    assert detection.language == "nl" and detection.reliable
    assert decide_language("nl", detection) == "nl"


@pytest.mark.parametrize(
    "text",
    [
        "I live at Van Oldenbarneveltlaan 12 in Den Haag, where is my order",
        "My parcel is stuck at the PostNL depot in Nieuwegein",
        "my order to Huize Het Oude Wijngaardhof has not arrived",
    ],
)
def test_english_with_dutch_names_is_english(detect, text):
    detection = detect(text)
    assert detection.language == "en" and detection.reliable


def test_a_quoted_title_does_not_decide_the_language(detect):
    detection = detect('ik zoek het album "Songs About Jane" van vorig jaar, is dat nog leverbaar')
    assert detection.language == "nl" and detection.reliable


def test_a_message_quoted_as_a_whole_or_shouted_is_read_normally(detect):
    assert detect('"waar is mijn pakket nou"').reliable
    assert detect("MIJN PAKKET IS NOG STEEDS NIET GELEVERD").language == "nl"
    assert detect("WHERE IS MY PARCEL I ORDERED IT A WEEK AGO").language == "en"


@pytest.mark.parametrize(
    "text, language",
    [("waar is mijn bestelling, ik wacht al een week", "nl"),
     ("my internet is not working since yesterday", "en")],
)
def test_a_clear_sentence_needs_no_langdetect(monkeypatch, text, language):
    detector = get_detector()

    def fail(*args, **kwargs):
        raise AssertionError("langdetect should not run for a clear sentence")

    monkeypatch.setattr(detector, "_probabilities", fail)
    detection = detector.detect(text)
    assert detection.language == language and detection.reliable


@pytest.mark.parametrize("text", ["Paul Simon", "Harry Potter", "Netflix Premium", "Den Haag", "AirPods Pro"])
@pytest.mark.parametrize("current", ["nl", "en"])
def test_two_word_names_never_flip_the_conversation(detect, text, current):
    assert decide_language(current, detect(text)) == current


def test_word_set_is_a_set_of_words():
    from bot.language import WordSet

    words = WordSet(["bestelling", "pakket", "order", "bestelling"])
    assert len(words) == 3
    assert "bestelling" in words and "order" in words
    assert "parcel" not in words and "" not in words and 42 not in words
    assert "Bestelling" not in words  # the lexicon is lower-case; callers lower-case first


def test_other_languages_are_still_recognised_with_fewer_profiles():
    from bot.language import OTHER_LANGUAGE_PROFILES, get_detector

    assert "nl" in OTHER_LANGUAGE_PROFILES and "en" in OTHER_LANGUAGE_PROFILES
    detector = get_detector()
    assert detector.detect("Bonjour, ma commande n'est toujours pas arrivée depuis une semaine").other_language == "fr"
    assert detector.detect("Guten Tag, meine Bestellung ist leider immer noch nicht angekommen").other_language == "de"
    assert detector.detect("Hola, mi pedido todavía no ha llegado, ¿qué pasa con el envío?").other_language == "es"
