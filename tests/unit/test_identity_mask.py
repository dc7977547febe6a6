"""The intent is read without the identity details (bot/nlu/identity_mask.py): the patterns come
from data/nlu/entities.yml, the text is restored before the entity extractors, and a message
that is nothing but identity details is ``inform`` (bot/nlu/identity_intent.py)."""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.utils.io import read_yaml_file

from bot.nlu.identity_intent import IdentityIntent
from bot.nlu.identity_mask import (
    IDENTITY_ONLY,
    MASKED,
    IdentityMask,
    RestoreText,
    content_words,
    identity_only,
    mask_identity,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mask(tmp_path_factory):
    """IdentityMask trained on the real entity regexes, persisted and loaded again."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("identity_mask"))
    resource = Resource("identity_mask")
    context = ExecutionContext(GraphSchema({}), "test")
    trained = IdentityMask.create({}, storage, resource, context)
    trained.train(load_data(str(ROOT / "data" / "nlu" / "entities.yml")))
    return IdentityMask.load({}, storage, resource, context)


@pytest.mark.parametrize("text, masked", [
    ("where's my dyson?? customer 60418825 postcode SW1A 1AA", "where's my dyson??"),
    ("waar blijft mijn bestelling? klantnr 48213377 postcode 3511AB", "waar blijft mijn bestelling?"),
    ("mijn internet doet het niet, klantnummer 28193746 postcode 3584 CS", "mijn internet doet het niet"),
    ("complaint: the courier threw my parcel over the fence. customer 61122334 postcode M1 1AE",
     "complaint: the courier threw my parcel over the fence."),
    # The field a change is about stays: "email", "phone number" say what to change.
    ("kan je mijn email veranderen naar jan@example.nl", "kan je mijn email veranderen naar"),
    ("please change my phone number to 06 74829301", "please change my phone number to"),
])
def test_a_request_is_read_without_the_identity_details(mask, text, masked):
    assert mask_identity(text, mask.patterns) == masked


@pytest.mark.parametrize("text", [
    "goedemiddag, ik ben klant 39481726, postcode 3581 KP",  # a greeting is not a request
    "mijn klantnummer is 51937204",
    "sure, 60418825 and SW1A 1AA",
    "my email is a.b@example.com",
    "where is my order",  # nothing to remove
])
def test_identity_with_nothing_else_to_say_is_left_whole(mask, text):
    assert mask_identity(text, mask.patterns) is None


@pytest.mark.parametrize("text, expected", [
    ("lucy.harper@example.com", True),
    ("klantnummer 39481726", True),
    ("my postcode is SW1A 1AA", True),
    ("hoi, 39481726 3581 KP", True),
    ("you can reach me at +44 7700 900517", False),
    ("storing in 1016 BK", False),
    ("i forgot my password", False),
])
def test_identity_only(mask, text, expected):
    assert identity_only(text, mask.patterns) is expected


def test_labels_and_fillers_are_not_content():
    assert content_words("mijn klantnummer is , postcode") == []
    assert content_words("hi, my customer number is") == []
    assert content_words("waar blijft mijn pakket") == ["waar", "blijft", "pakket"]


def test_the_patterns_come_from_the_training_data_and_survive_persistence(mask):
    assert set(mask.raw_patterns) == {"customer_number", "postcode", "email", "phone_number"}
    assert mask.patterns


def test_masked_for_the_classifiers_and_restored_for_the_extractors(mask):
    original = "where's my dyson?? customer 60418825 postcode SW1A 1AA"
    message = Message(data={TEXT: original})
    mask.process([message])
    assert message.get(TEXT) == "where's my dyson??"
    assert message.get(MASKED) is True
    RestoreText.create({}, None, None, None).process([message])
    assert message.get(TEXT) == original  # the entity extractors and the tracker see what was written


def test_training_examples_are_masked_like_messages(mask):
    from rasa.shared.nlu.training_data.training_data import TrainingData

    example = Message(data={TEXT: "mijn föhn is kapot, klantnummer 47203318 postcode 3521 CE", INTENT: "defective_product"})
    mask.process_training_data(TrainingData([example]))
    assert example.get(TEXT) == "mijn föhn is kapot"


def test_identity_only_message_is_inform_whatever_the_classifier_said(mask):
    message = Message(data={TEXT: "lucy.harper@example.com"})
    mask.process([message])
    assert message.get(IDENTITY_ONLY) is True
    message.set(INTENT, {"name": "report_outage", "confidence": 0.7})
    message.set(ENTITIES, [])
    IdentityIntent.create({}, None, None, None).process([message])
    assert message.get(INTENT)["name"] == "inform"


def test_a_request_with_identity_keeps_its_intent(mask):
    message = Message(data={TEXT: "my internet is down, customer 28193746"})
    mask.process([message])
    assert not message.get(IDENTITY_ONLY)
    message.set(INTENT, {"name": "report_outage", "confidence": 0.9})
    message.set(ENTITIES, [{"entity": "customer_number", "value": "28193746"}])
    IdentityIntent.create({}, None, None, None).process([message])
    assert message.get(INTENT)["name"] == "report_outage"


def test_the_mask_runs_before_the_tokenizer_and_the_text_is_back_before_the_extractors():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    assert pipeline.index("bot.nlu.identity_mask.IdentityMask") < pipeline.index("bot.nlu.tokenizer.BilingualLemmaTokenizer")
    assert pipeline.index("bot.nlu.identity_mask.RestoreText") > pipeline.index("DIETClassifier")
    assert pipeline.index("bot.nlu.identity_mask.RestoreText") < pipeline.index("RegexEntityExtractor")
