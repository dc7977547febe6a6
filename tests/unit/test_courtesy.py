"""The intent is read without the greeting, thanks or "can you help me" around a request
(bot/nlu/courtesy.py): the courtesy is dropped only when the rest still says something, and the
text is restored for the entity extractors and the tracker."""

from pathlib import Path

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import read_yaml_file

from bot.nlu.courtesy import (
    OVERRIDDEN_FROM,
    TRIMMED,
    CourtesyIntent,
    CourtesyTrim,
    is_courtesy,
    split_courtesy,
    trim_courtesy,
)
from bot.nlu.identity_mask import ORIGINAL_TEXT, RestoreText

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, trimmed", [
    # Found in conversations: thanks and a follow-up in one line; a greeting, a language and the problem.
    ("cool thx. when does the new one arrive?", "when does the new one arrive?"),
    ("top bedankt, wanneer komt de nieuwe?", "wanneer komt de nieuwe?"),
    ("hallo, can you help me in english? my order didnt arrive", "my order didnt arrive"),
    ("hoi, kun je me helpen? mijn pakket is nog niet aangekomen", "mijn pakket is nog niet aangekomen"),
    ("Goedemiddag, kunt u mij even helpen alstublieft? Mijn factuur klopt niet", "Mijn factuur klopt niet"),
    ("Hi there! Quick question: when will my refund arrive?", "when will my refund arrive?"),
    ("Hi, quick question - when will my refund arrive? thanks", "when will my refund arrive?"),
    ("hoi -- mijn e-mailadres klopt niet - alvast bedankt", "mijn e-mailadres klopt niet"),
    ("hey, do you speak english? my internet is down", "my internet is down"),
    ("Hello, I'm Dutch but my Dutch typing is bad, ok if I write english? my package never came",
     "my package never came"),  # found in a conversation
    ("sorry voor mijn slechte nederlands, mijn factuur is te hoog", "mijn factuur is te hoog"),
    ("hi, hope you're well! i've been charged twice", "i've been charged twice"),
    ("hello, kan dat ook in het nederlands? mijn bestelling is niet aangekomen", "mijn bestelling is niet aangekomen"),
    ("hoi, can we do this in english? the invoice is wrong", "the invoice is wrong"),
    ("thanks! and how long will it take?", "and how long will it take?"),
    ("bedankt, maar het werkt nog steeds niet", "maar het werkt nog steeds niet"),
    ("amai merci, en wanneer komt die nieuwe?", "en wanneer komt die nieuwe?"),  # Flemish "wow"
    ("super thank you so much!! the router works again", "the router works again"),
    ("thanks for the quick answer, but my invoice is still wrong", "but my invoice is still wrong"),
    ("goedemiddag, ik heb een vraag over mijn factuur", "ik heb een vraag over mijn factuur"),
    ("ik heb een vraagje: kan ik mijn bestelling nog annuleren?", "kan ik mijn bestelling nog annuleren?"),
    # ... and after the request.
    ("waar blijft mijn pakket? alvast bedankt!", "waar blijft mijn pakket?"),
    ("my router is broken, can you help me please?", "my router is broken"),
    ("mijn föhn is stuk. groetjes", "mijn föhn is stuk."),
])
def test_courtesy_around_a_request_is_dropped(text, trimmed):
    assert trim_courtesy(text) == trimmed


@pytest.mark.parametrize("text", [
    "thanks, bye",  # nothing but courtesy: the classifiers decide between thank and goodbye
    "hallo, kun je me helpen?",
    "hello? is anyone there?",
    "top bedankt",
    "ok, annuleer maar",  # "ok" alone is an answer, not courtesy
    "ja, bedankt, maar het werkt nog steeds niet",  # a yes stays
    "hoi, ik ben Lotte",  # too little left to read alone
    "dag, storing?",
    "waar blijft mijn pakket",  # nothing to drop
    "in english please",
])
def test_kept_whole(text):
    assert trim_courtesy(text) is None


@pytest.mark.parametrize("clause, expected", [
    ("ok thanks", True), ("alvast bedankt!", True), ("met vriendelijke groet", True),
    ("can you help me in english?", True),
    ("spreekt u ook engels?", True), ("ik heb een probleem", True), ("hi can you help me", True),
    ("ok", False), ("top", False), ("super", False), ("ja", False), ("nee", False),
    ("my order", False), ("help", False), ("thanks for my broken router", False),
])
def test_what_is_courtesy(clause, expected):
    assert is_courtesy(clause) is expected


def test_trimmed_for_the_classifiers_and_restored_for_the_extractors():
    message = Message(data={TEXT: "top bedankt, wanneer komt de nieuwe?"})
    CourtesyTrim.create({}, None, None, None).process([message])
    assert message.get(TEXT) == "wanneer komt de nieuwe?"
    assert message.get(TRIMMED) == {"said": "thank"}
    RestoreText.create({}, None, None, None).process([message])
    assert message.get(TEXT) == "top bedankt, wanneer komt de nieuwe?"
    assert message.get(ORIGINAL_TEXT) is None


def test_after_the_identity_mask_the_original_text_is_the_customers():
    """IdentityMask stored the original already; the trim must not overwrite it with its own input."""
    original = "hoi, waar blijft mijn pakket? 48213377 3511AB"
    message = Message(data={TEXT: "hoi, waar blijft mijn pakket?", ORIGINAL_TEXT: original})
    CourtesyTrim.create({}, None, None, None).process([message])
    assert message.get(TEXT) == "waar blijft mijn pakket?"
    RestoreText.create({}, None, None, None).process([message])
    assert message.get(TEXT) == original


def test_training_examples_are_left_as_written():
    example = Message(data={TEXT: "hallo, mijn factuur klopt niet", "intent": "billing_question"})
    data = CourtesyTrim.create({}, None, None, None).process_training_data(TrainingData([example]))
    assert data.training_examples[0].get(TEXT) == "hallo, mijn factuur klopt niet"


@pytest.mark.parametrize("text, said", [
    ("merci hé, ge zijt een schat", "thank"),  # leading thanks
    ("thank you dear, very kind of you to help an old lady", "thank"),
    ("ik ga ervan door, doeg", "goodbye"),  # a sign-off, before or after
    ("i'll leave it there for today, bye", "goodbye"),
    ("hi, will it snow tomorrow?", None),  # a greeting says nothing about the rest
    ("what's the weather like tomorrow? thanks", None),  # thanks in advance: the request stands
    ("hoi! thanks alvast. wat is het weer morgen in utrecht", None),  # found in a conversation
])
def test_what_the_courtesy_alone_said(text, said):
    assert split_courtesy(text).said == said


def _classified(said, intent, confidence, ranking):
    message = Message(data={TEXT: "rest", TRIMMED: {"said": said} if said is not None else None,
                            INTENT: {"name": intent, "confidence": confidence},
                            INTENT_RANKING_KEY: [{"name": name, "confidence": c} for name, c in ranking]})
    CourtesyIntent.create({}, None, None, None).process([message])
    return message


@pytest.mark.parametrize("said, intent, ranking, expected", [
    # "merci hé, ge zijt een schat": the rest is out of scope, so the message is thanks.
    ("thank", "out_of_scope", [("out_of_scope", 0.96), ("thank", 0.02)], "thank"),
    ("goodbye", "nlu_fallback", [("nlu_fallback", 0.55), ("out_of_scope", 0.4), ("goodbye", 0.3)], "goodbye"),
    # "ik ga ervan door, doeg": a sign-off with a rest not understood is goodbye, whatever came second.
    ("goodbye", "nlu_fallback", [("nlu_fallback", 0.55), ("request_human", 0.53)], "goodbye"),
    ("thank", "nlu_fallback", [("nlu_fallback", 0.55), ("request_human", 0.53)], "nlu_fallback"),
    # "cool thx. when does the new one arrive?": a follow-up is a likely second reading: stays.
    ("thank", "out_of_scope", [("out_of_scope", 0.59), ("ask_when", 0.35)], "out_of_scope"),
    # A case read in the rest stands; after a greeting an out-of-scope rest stays out of scope.
    ("thank", "ask_when", [("ask_when", 0.92)], "ask_when"),
    (None, "out_of_scope", [("out_of_scope", 0.9)], "out_of_scope"),
])
def test_a_trimmed_message_whose_rest_is_nothing_we_handle_is_what_its_courtesy_said(
        said, intent, ranking, expected):
    message = _classified(said, intent, 0.9, ranking)
    assert message.get(INTENT)["name"] == expected
    assert (message.get(OVERRIDDEN_FROM) == intent) is (expected != intent)


def test_the_trim_runs_after_the_identity_mask_and_before_the_tokenizer():
    pipeline = [item["name"] for item in read_yaml_file(str(ROOT / "config.yml"))["pipeline"]]
    trim = pipeline.index("bot.nlu.courtesy.CourtesyTrim")
    assert pipeline.index("bot.nlu.identity_mask.IdentityMask") < trim
    assert trim < pipeline.index("bot.nlu.tokenizer.BilingualLemmaTokenizer")
    courtesy_intent = pipeline.index("bot.nlu.courtesy.CourtesyIntent")
    assert pipeline.index("bot.nlu.nonsense_guard.NonsenseGuard") < courtesy_intent
    assert courtesy_intent < pipeline.index("bot.nlu.identity_intent.IdentityIntent")
