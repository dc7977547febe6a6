"""The out-of-scope components: the nonsense guard (gibberish is out of scope; real customers'
messages are left alone), the out-of-scope topics (learned apart, reported as one intent) and the
second opinion (a linear model mixed into DIET's ranking)."""

from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.utils.io import read_yaml_file

from bot.nlu.language_detector import LanguageDetector
from bot.nlu.nonsense_guard import (
    NONSENSE,
    NONSENSE_CHECK,
    NonsenseGuard,
    Vocabulary,
    judge,
    looks_mashed,
)
from bot.nlu.out_of_scope_topics import TOPIC, OutOfScopeTopics, is_topic, merge_ranking
from bot.nlu.second_opinion import (
    DIET_INTENT, MODEL_FILE, SecondOpinion, features, lemma_text, linear_probabilities, merge_topics, mix,
    probabilities, sentence_vector,
)
from bot.nlu.tokenizer import BilingualLemmaTokenizer

ROOT = Path(__file__).resolve().parents[2]

GIBBERISH = [
    "flurb zanq the wibble",
    "asdf qwer zxcv",
    "gfhj kjhg",
    "skdjfh sdkjfh sdkfj",
    "xyzzy plugh frobozz",
    "zorp blagh de flimflop",
    "glorbnik zwibbok fnarp",
    "qwrtzp",
    "hjkl",
]

CUSTOMERS = [
    # short answers, numbers, postcodes, e-mail
    "ok", "ja", "nee", "oké", "thx", "ty", "48213377", "3511 AB", "SW1A 1AA", "2000", "👍",
    "sanne.devries@gmail.com", "klantnummer 48213377 postcode 3511 AB",
    "my email is e.clarke@outlook.co.uk and postcode SW1A 1AA",
    "order 2045617789", "+31 6 12345678",
    # Flemish and chat Dutch
    "mn gsm is kapot", "ge hebt da ni goed gedaan", "kzit zonder internet sinds gisteren",
    "kheb mijn pakket nog ni gekregen", "tis nie in orde", "amai da duurt lang",
    "allee, wanneer komt da pakske", "wa is de status van mn bestelling",
    "hallo, mn internet doet raar sinds de storing, kunnen jullie ff kijken",
    # typos
    "pakage not recieved yet", "my ordr hasnt arivd", "wher is my parcle", "i cant loggin",
    "my emial adress changed", "mijn bestlling is nog nie binnen", "wachtwoord vergete",
    "heyyy", "hellooo", "pleaaase help",
    # names and compounds
    "Pieter Janssens", "ik ben Sanne de Vries", "my name is Siobhan Kowalczyk",
    "mijn föhn is kapot", "de wasmachinedeur gaat niet open", "the airfryer basket is broken",
    "de internetverbinding valt steeds weg", "my smartwatch strap broke",
    # ordinary requests
    "waar is mijn pakket", "ik wil de printer terugsturen", "forgot my password",
    "medewerker", "agent please", "ik wil een klacht indienen", "will it snow today",
]


@pytest.fixture(scope="module")
def front():
    """LanguageDetector + tokenizer, as in config.yml."""
    detector = LanguageDetector()
    tokenizer = BilingualLemmaTokenizer(BilingualLemmaTokenizer.get_default_config())

    def run(messages):
        detector.process(messages)
        tokenizer.process(messages)
        return messages

    return run


@pytest.fixture(scope="module")
def guard(front, tmp_path_factory):
    """The guard trained on the project's NLU data, persisted and loaded again."""
    training_data = load_data(str(ROOT / "data" / "nlu"))
    front(training_data.training_examples)
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("nonsense_guard")
    context = ExecutionContext(GraphSchema({}), "test")
    trained = NonsenseGuard.create(NonsenseGuard.get_default_config(), storage, resource, context)
    trained.train(training_data)
    return NonsenseGuard.load(NonsenseGuard.get_default_config(), storage, resource, context)


def parse(front, guard, text, intent="complaint", entities=()):
    message = Message(data={TEXT: text})
    front([message])
    ranking = [{"name": intent, "confidence": 0.91}, {"name": "order_status", "confidence": 0.05}]
    message.set(INTENT, dict(ranking[0]), add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(item) for item in ranking], add_to_output=True)
    message.set(ENTITIES, list(entities), add_to_output=True)
    guard.process([message])
    return message


@pytest.mark.parametrize("text", GIBBERISH)
def test_gibberish_is_out_of_scope(front, guard, text):
    message = parse(front, guard, text)
    assert message.get(NONSENSE) is True
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": 1.0}
    assert message.get(NONSENSE_CHECK)["overrode"] == "complaint"
    # The classifier's ranking is kept as it was.
    assert [item["name"] for item in message.get(INTENT_RANKING_KEY)] == ["complaint", "order_status"]
    assert {NONSENSE, NONSENSE_CHECK, INTENT} <= set(message.as_dict(only_output_properties=True))


@pytest.mark.parametrize("text", CUSTOMERS)
def test_real_customer_messages_are_not_nonsense(front, guard, text):
    message = parse(front, guard, text, intent="order_status")
    assert message.get(NONSENSE) is False, message.get(NONSENSE_CHECK)
    assert message.get(INTENT)["name"] == "order_status"


def test_entity_values_do_not_count_as_unknown(front, guard):
    text = "bestelling XK-PLORB-ZZT voor Qwyrtz Blaghson"
    span = text.index("XK-PLORB-ZZT")
    entity = {"entity": "order_number", "start": span, "end": span + len("XK-PLORB-ZZT"), "value": "XK-PLORB-ZZT"}
    assert parse(front, guard, text, entities=[entity]).get(NONSENSE) is False
    # Without the entity the unknown words are the message.
    assert parse(front, guard, "xkplorbzzt qwyrtz blaghson").get(NONSENSE) is True


def test_gibberish_with_identity_details_keeps_the_details_out_of_the_count(front, guard):
    message = parse(front, guard, "flurb zanq 48213377 3511 AB", intent="greet")
    assert message.get(NONSENSE) is True
    assert message.get(NONSENSE_CHECK)["unknown"] == ["flurb", "zanq"]


def test_out_of_scope_intent_is_left_as_it_is(front, guard):
    message = parse(front, guard, "flurb zanq the wibble", intent="out_of_scope")
    assert message.get(NONSENSE) is True
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": 0.91}


def test_training_vocabulary_is_persisted(guard):
    words = guard.vocabulary.training_words
    assert {"bestelling", "pakket", "order", "password", "gsm"} <= words
    assert not any(ch.isdigit() for word in words for ch in word)


def test_lexicon_alone_knows_everyday_words():
    """Without training words, spaCy's tables, the chat list, typos and compounds still know
    ordinary Dutch and English."""
    vocabulary = Vocabulary()
    for word in ("weather", "sneeuw", "werkt", "bestellingen", "gsm", "da", "ge", "kheb", "recieved",
                 "wasmachinedeur", "thx", "m'n", "e-mail", "hellooo"):
        assert vocabulary.knows(word), word
    for word in ("flurb", "zanq", "gfhj", "sdkjfh"):
        assert not vocabulary.knows(word), word


@pytest.mark.parametrize(
    "words, nonsense",
    [
        (["flurb", "zanq", "the", "wibble"], True),
        (["flurb", "en", "de", "pakket"], False),  # one unknown word is a name or a typo
        (["flurb", "zanq", "waar", "is", "mijn", "pakket"], False),  # less than half unknown
        (["flurb"], False),  # one word must look like a keyboard mash
        (["sdfghj"], True),
        ([], False),
    ],
)
def test_judge(words, nonsense):
    assert judge([(word, False) for word in words], Vocabulary(["pakket"]))[NONSENSE] is nonsense


def test_numbers_mails_and_entities_are_not_judged():
    words = [("48213377", False), ("3511", True), ("AB", True), ("a@b.nl", False), ("zanqflurb", True)]
    verdict = judge(words, Vocabulary())
    assert verdict == {NONSENSE: False, "unknown": [], "words": 0, "unknown_share": 0.0}


@pytest.mark.parametrize("word, mashed", [("asdfgh", True), ("hjkl", True), ("qwrtzp", True), ("hmmm", False),
                                          ("jkjkjk", False), ("angstschreeuw", True), ("zzz", False)])
def test_looks_mashed(word, mashed):
    # looks_mashed only sees unknown words; a known one like "angstschreeuw" never gets here.
    assert looks_mashed(word) is mashed


def test_guard_runs_after_the_fallback_classifier():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    guard_at = pipeline.index("bot.nlu.nonsense_guard.NonsenseGuard")
    assert guard_at > pipeline.index("FallbackClassifier")
    assert guard_at > pipeline.index("RegexEntityExtractor")


# --------------------------------------------------------------------------------------------
# Out-of-scope topics (bot/nlu/out_of_scope_topics.py): learned apart, reported as one intent


def topics_message(ranking):
    message = Message(data={TEXT: "x"})
    message.set(INTENT, dict(ranking[0]), add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(item) for item in ranking], add_to_output=True)
    OutOfScopeTopics().process([message])
    return message


def test_topics_add_up_into_out_of_scope():
    message = topics_message([
        {"name": "out_of_scope_media", "confidence": 0.5},
        {"name": "order_status", "confidence": 0.3},
        {"name": "out_of_scope_assistant", "confidence": 0.2},
    ])
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": pytest.approx(0.7)}
    assert [item["name"] for item in message.get(INTENT_RANKING_KEY)] == ["out_of_scope", "order_status"]
    assert message.get(TOPIC) == "out_of_scope_media"


def test_topics_together_can_outweigh_a_case():
    message = topics_message([
        {"name": "order_status", "confidence": 0.4},
        {"name": "out_of_scope_shop", "confidence": 0.35},
        {"name": "out_of_scope_account", "confidence": 0.25},
    ])
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": pytest.approx(0.6)}
    assert message.get(TOPIC) is None


def test_a_case_above_all_topics_stays():
    message = topics_message([{"name": "order_status", "confidence": 0.9}, {"name": "out_of_scope_shop", "confidence": 0.1}])
    assert message.get(INTENT) == {"name": "order_status", "confidence": 0.9}
    assert message.get(INTENT_RANKING_KEY) == [
        {"name": "order_status", "confidence": 0.9}, {"name": "out_of_scope", "confidence": 0.1}]


def test_messages_without_topics_are_untouched():
    ranking = [{"name": "greet", "confidence": 0.8}, {"name": "thank", "confidence": 0.2}]
    assert merge_ranking(ranking) == ranking
    assert topics_message(ranking).get(INTENT_RANKING_KEY) == ranking


def test_every_out_of_scope_example_is_out_of_scope_or_one_of_its_topics():
    for language in ("nl", "en"):
        data = load_data(str(ROOT / "data" / "nlu" / language / "out_of_scope.yml"))
        intents = {message.get(INTENT) for message in data.intent_examples}
        assert "out_of_scope" in intents and all(is_topic(intent) for intent in intents), intents


def test_topics_are_merged_right_after_diet_and_the_guard_runs_after_the_fallback():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    assert pipeline[pipeline.index("bot.nlu.out_of_scope_topics.OutOfScopeTopics") - 1] == "DIETClassifier"
    assert pipeline.index("bot.nlu.nonsense_guard.NonsenseGuard") > pipeline.index("FallbackClassifier")


# --------------------------------------------------------------------------------------------
# Second opinion (bot/nlu/second_opinion.py): a linear model mixed into DIET's ranking


def test_mix_weighs_sharpens_and_renormalises():
    diet = [{"name": "order_status", "confidence": 0.6}, {"name": "out_of_scope", "confidence": 0.4}]
    linear = {"order_status": 0.05, "out_of_scope": 0.9, "complaint": 0.05}
    plain = mix(diet, linear, weight=0.5, sharpen=1.0)
    assert plain == [{"name": "out_of_scope", "confidence": pytest.approx(0.65)},
                     {"name": "order_status", "confidence": pytest.approx(0.325)}]  # as long as DIET's
    sharp = mix(diet, linear, weight=0.5, sharpen=3.0)
    assert [item["name"] for item in sharp] == ["out_of_scope", "order_status"]  # same order
    assert sharp[0]["confidence"] == pytest.approx(0.65 ** 3 / (0.65 ** 3 + 0.325 ** 3 + 0.025 ** 3), abs=1e-5)


def test_linear_topics_count_as_out_of_scope():
    assert merge_topics({"out_of_scope_media": 0.3, "out_of_scope": 0.1, "greet": 0.6}) == pytest.approx(
        {"out_of_scope": 0.4, "greet": 0.6})


@pytest.fixture(scope="module")
def second_opinion(front, tmp_path_factory):
    """Featurizer + second opinion trained on a small set, persisted and loaded again."""
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.shared.nlu.training_data.training_data import TrainingData

    examples = {
        "order_status": ["waar is mijn pakket", "where is my parcel", "my order has not arrived",
                         "wanneer komt mijn bestelling", "track my order"],
        "out_of_scope_assistant": ["what's the weather tomorrow", "zet een wekker om 7 uur",
                                   "will it snow today", "gaat het regenen", "set a timer"],
        "greet": ["hallo", "hi there", "goedemorgen", "hello", "hey"],
    }
    messages = [Message(data={TEXT: text, INTENT: intent}) for intent, texts in examples.items() for text in texts]
    training_data = TrainingData(messages)
    front(training_data.training_examples)
    storage = LocalModelStorage(tmp_path_factory.mktemp("second_opinion"))
    context = ExecutionContext(GraphSchema({}), "test")
    featurizer = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "use_lemma": True}, storage, Resource("cvf"), context)
    featurizer.train(training_data)
    featurizer.process_training_data(training_data)
    config = {**SecondOpinion.get_default_config(), "weight": 0.4, "sharpen": 3.0, "ngrams": 2}
    SecondOpinion.create(config, storage, Resource("so"), context).train(training_data)
    loaded = SecondOpinion.load(config, storage, Resource("so"), context)

    def run(text, ranking):
        message = Message(data={TEXT: text})
        front([message])
        featurizer.process([message])
        message.set(INTENT, dict(ranking[0]), add_to_output=True)
        message.set(INTENT_RANKING_KEY, [dict(item) for item in ranking], add_to_output=True)
        loaded.process([message])
        return message

    run.component, run.config, run.context = loaded, config, context  # type: ignore[attr-defined]
    return run


def test_second_opinion_overrules_a_sure_but_wrong_diet(second_opinion):
    message = second_opinion("will it snow tomorrow", [
        {"name": "order_status", "confidence": 0.99}, {"name": "out_of_scope", "confidence": 0.01}])
    assert message.get(INTENT)["name"] == "out_of_scope"
    assert message.get(DIET_INTENT)["name"] == "order_status"


def test_second_opinion_keeps_an_agreed_intent_sure(second_opinion):
    message = second_opinion("where is my parcel", [
        {"name": "order_status", "confidence": 0.97}, {"name": "out_of_scope", "confidence": 0.03}])
    assert message.get(INTENT)["name"] == "order_status"
    assert message.get(INTENT)["confidence"] > 0.55  # FallbackClassifier's threshold


def test_second_opinion_reads_pairs_of_lemmas_of_the_tokenized_text(second_opinion):
    message = second_opinion("Where is my parcel?", [
        {"name": "order_status", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}])
    assert lemma_text(message) == " ".join(
        (token.lemma or token.text).lower() for token in message.get("text_tokens"))  # no "?": no token
    vectorizer = second_opinion.component._vectorizer
    assert vectorizer is not None and vectorizer.ngram_range == (1, 2)  # stored with the model, loaded again
    assert any(" " in term for term in vectorizer.vocabulary_)  # pairs were learned
    together = features(message, vectorizer, 1.0)
    alone = sentence_vector(message)
    assert together.shape[1] == alone.shape[1] + len(vectorizer.vocabulary_)
    assert float(together.multiply(together).sum()) == pytest.approx(1.0)  # one L2-normalised vector


@pytest.mark.parametrize("text", ["waar blijft mijn pakket??", "Will it SNOW tomorrow", "hallo", "zzz qqq",
                                  "my order order order has not arrived"])
def test_the_fast_path_at_prediction_time_is_the_trained_model_exactly(second_opinion, text):
    """``linear_probabilities`` (prediction, no scipy matrices) gives what ``probabilities`` of
    ``features`` (training's way) gives."""
    message = second_opinion(text, [{"name": "greet", "confidence": 1.0}])
    component = second_opinion.component
    expected = probabilities(component._model, features(message, component._vectorizer, 1.0))
    fast = linear_probabilities(message, component._model, component._vectorizer, 1.0)
    assert fast is not None and np.allclose(fast, expected, rtol=0, atol=1e-12)


def test_second_opinion_stored_before_the_ngrams_still_loads(second_opinion, tmp_path):
    import pickle

    storage = LocalModelStorage(tmp_path)
    with storage.write_to(Resource("old")) as directory:  # the bare model, as stored before the pairs
        (directory / MODEL_FILE).write_bytes(pickle.dumps(second_opinion.component._model))
    old = SecondOpinion.load({**second_opinion.config, "ngrams": 0}, storage, Resource("old"), second_opinion.context)
    assert old._model is not None and old._vectorizer is None


def test_second_opinion_runs_between_the_topics_and_the_fallback():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    at = pipeline.index("bot.nlu.second_opinion.SecondOpinion")
    assert pipeline.index("bot.nlu.out_of_scope_topics.OutOfScopeTopics") < at < pipeline.index("FallbackClassifier")


@pytest.mark.parametrize("text, intent", [("?", "nlu_fallback"), ("???", "nlu_fallback"), ("?!", "nlu_fallback"),
                                          ("👍", "affirm"), ("!!", "affirm"), ("ok?", "affirm")])
def test_question_marks_alone_are_no_intent(front, guard, text, intent):
    message = parse(front, guard, text, intent="affirm")
    assert message.get(INTENT)["name"] == intent and message.get(NONSENSE) is False
