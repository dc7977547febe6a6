"""NLU component: the intent is read without a greeting, thanks or "can you help me" around it.

Customers wrap what they want in courtesy: "top bedankt, wanneer komt de nieuwe?", "cool thx.
when does the new one arrive?", "hallo, can you help me in english? my order didnt arrive",
"waar blijft mijn pakket? alvast bedankt". Read whole, the courtesy pulls the reading towards
``thank`` or ``greet`` (only "thank you" was answered) or blurs it (a "did you mean" about another
case). Two things said in one line, the courtesy and the request, deserve an answer to the request.

``CourtesyTrim`` (after ``IdentityMask``, before the tokenizer) drops a leading and a trailing
clause, cut at sentence punctuation, that is only courtesy, when what is left still says
something: at least ``min_content_words`` words that are neither courtesy nor fillers. A clause is
courtesy when it is

* greetings, thanks or a sign-off, with at most praise and fillers beside them ("ok thanks",
  "top bedankt", "hi there", "alvast bedankt", "super, thank you so much"), or
* one of the set phrases that ask for help or a language, or announce a question ("can you help
  me in english", "kunt u mij even helpen", "ik heb een vraag", "do you speak dutch"), after at
  most such words ("hoi kun je me helpen").

Sometimes the courtesy is the message: "merci hé, ge zijt een schat", "i'll leave it there for
today, bye". ``CourtesyIntent`` (after the classifiers) reads such a message as what its courtesy
said, thanks or goodbye, when its rest is nothing we handle (out of scope or not understood, with
no case or follow-up a likely second reading).

Praise or "ok" alone is not courtesy ("ok, annuleer maar" confirms; it stays whole), and a message
that is only courtesy ("thanks, bye", "hallo, kun je me helpen?") is left whole for the classifiers.
The text is restored by ``bot.nlu.identity_mask.RestoreText`` before the entity extractors, so the
tracker keeps what the customer wrote and the language detector (which runs first) saw all of it.
The training examples are not trimmed: the classifiers learned "hallo, mijn factuur klopt niet"
as a billing question, and read "mijn factuur klopt niet" the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Pattern, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.component import ConfigOnlyComponent
from bot.nlu.identity_intent import SMALL_TALK
from bot.nlu.identity_mask import ORIGINAL_TEXT, content_words

TRIMMED = "courtesy_trimmed"

# Words that make a clause courtesy: greetings, thanks, sign-offs (both languages, with the
# spellings customers type). "morgen" and "middag" are not here: "morgen" also means tomorrow.
GREETINGS = frozenset(
    """
    hoi hallo hallootjes hai hee heey hey heya hi hii hiya hello helo hellooo howdy yo dag daag
    goedemorgen goedemiddag goedenavond goeiemorgen goeiemiddag goeienavond goedendag goeiedag
    greetings salut salam
    """.split()
)
THANKS = frozenset(
    """
    bedankt bedankr dank danku dankje dankjewel dankuwel dankjeweeel merci thanks thank
    thankyou thanx thx tnx thnx ty ta cheers appreciated appreciate
    """.split()
)
# Thanks for what is about to be asked ("thanks alvast", "thanks in advance") thank for nothing yet.
IN_ADVANCE = frozenset("alvast vast advance".split())
GOODBYES = frozenset("doei doeg bye ciao groetjes groeten groet regards".split())
GREETINGS_AND_THANKS = GREETINGS | THANKS | GOODBYES
# Words that may stand beside them without making the clause a request: praise, "ok", address,
# intensifiers and what one thanks for.
ALONGSIDE = frozenset(
    """
    ok oke oké okay okey okidoki cool top super great perfect perfecte nice lovely awesome brilliant
    fijn mooi prima geweldig fantastisch heerlijk wow wauw ah oh aha yay amai allee awel goh oei
    heel erg zeer hartelijk hartstikke vriendelijk vriendelijke kindly very much so a lot alot bunch
    million many again nogmaals alvast in advance voor for de het the your je u jullie you all
    allemaal daar there hoor he hé hè wel well dear sir madam meneer mevrouw team helder
    hulp help info information uitleg antwoord answer reply snelle quick fast snel
    and en met best kind
    """.split()
)
_COURTESY_WORDS = GREETINGS_AND_THANKS | ALONGSIDE

# Set phrases that ask for help or a language, or announce a question: courtesy before (or
# after) the request itself. Matched against the whole clause after its leading courtesy words.
_PHRASES = [
    # English
    r"(?:can|could|would|will) (?:you|u) (?:please )?(?:help|assist) (?:me|us)(?: out)?",
    r"(?:can|could) i ask (?:you )?(?:a|something)(?: quick)?(?: question)?",
    r"(?:i|we) (?:have|'ve got|ve got|got) (?:a )?(?:quick |small |short )?(?:question|query|problem|issue)",
    r"(?:a )?quick question",
    r"(?:i|we) need (?:some )?help",
    r"help(?: me)?",
    r"(?:do|can|could) (?:you|u) speak (?:english|dutch)",
    r"(?:in )?(?:english|dutch)",
    r"(?:can|could|shall) (?:we|i|you) (?:do this |do that |continue |carry on |talk |speak |write |chat )?in (?:english|dutch)",
    r"sorry (?:to bother you|for bothering you|for the trouble)",
    r"hope (?:you're|youre|you are|your) (?:well|doing well|having a good day)",
    r"how are (?:you|u)(?: doing)?",
    # ... and apologies for the language ("I'm Dutch but my Dutch typing is bad, ok if I write english?")
    r"(?:is it )?(?:ok|okay|alright|fine) if i (?:write|speak|talk|type|continue) (?:in )?(?:english|dutch)",
    r"sorry (?:for|about) my (?:bad |poor |broken )?(?:english|dutch)",
    r"my (?:english|dutch)(?: typing| spelling| writing)? (?:is|isn't|isnt) (?:not )?(?:very |so |that |too )?"
    r"(?:good|great|bad|poor|terrible)",
    r"(?:i'm|im|i am) (?:dutch|english|belgian|flemish|british)(?: but)?",
    # Dutch
    r"(?:kun|kan|kunt|zou|zoudt) (?:je|jij|u|jullie) (?:me|mij|ons) (?:even |misschien |ook |alsjeblieft |alstublieft )?helpen",
    r"(?:mag|kan) ik (?:je|jou|u|jullie) (?:iets|een vraag|een vraagje)(?: vragen)?",
    r"ik (?:heb|had|zit met) (?:een )?(?:korte |kleine |snelle )?(?:vraag|vraagje|probleem|probleempje)",
    r"(?:ik )?(?:heb|zoek) (?:wat )?hulp(?: nodig)?",
    r"(?:spreek|spreekt|praat|kun|kunt|kan) (?:je|jij|u) (?:ook )?(?:engels|nederlands|vlaams)(?: spreken| praten)?",
    r"(?:in het )?(?:engels|nederlands|vlaams)",
    r"(?:kan|kunnen|mag) (?:dat|het|we|ik|je|u) (?:ook |verder |dit )?in het (?:engels|nederlands|vlaams)"
    r"(?: doen| verder| praten| schrijven)?",
    r"sorry (?:dat ik (?:je|u|jullie) stoor|voor het storen)",
    r"(?:ik )?hoop (?:dat )?(?:alles goed is|het goed (?:met je |met u )?gaat)",
    r"hoe (?:gaat het|is het)(?: met (?:je|u))?",
    r"(?:is het )?(?:goed|oké|oke|ok) als ik (?:in het )?(?:engels|nederlands) (?:schrijf|typ|praat)",
    r"sorry (?:voor|om) mijn (?:slechte |gebrekkige )?(?:engels|nederlands)",
    r"mijn (?:engels|nederlands) is (?:niet )?(?:zo |erg |heel )?(?:goed|slecht|best slecht)",
]
_SOFTENERS = r"please|pls|plz|graag|aub|svp|alsjeblieft|alstublieft|even|ff|dan|ook|hoor|maybe|misschien"
_PHRASE = re.compile(
    r"(?:(?:{s}) )*(?:{p})(?: (?:{p}|{s}))*".format(p="|".join(_PHRASES), s=_SOFTENERS)
)
# A clause ends at sentence punctuation or a dash between spaces ("quick question - when ..."); the
# separator stays with the clause before it, so the clauses put together are the text.
_CLAUSE = re.compile(r"(?:(?!\s[-–—]+\s)[^.!?,;:\n])+(?:[.!?,;:\n]+|\s[-–—]+\s)?|[.!?,;:\n]+|\s[-–—]+\s")
_WORDS = re.compile(r"[^\W\d_](?:[^\W\d_]|['’](?=[^\W\d_]))*", re.UNICODE)  # "i'm" is one word


def _words(text: str) -> List[str]:
    return [word.lower().replace("’", "'") for word in _WORDS.findall(text)]


def is_courtesy(clause: str, phrase: Pattern[str] = _PHRASE) -> bool:
    """True when ``clause`` is only courtesy (see the module docstring)."""
    words = _words(clause)
    if not words:
        return False
    lead = 0
    while lead < len(words) and words[lead] in _COURTESY_WORDS:
        lead += 1
    if lead == len(words):
        return any(word in GREETINGS_AND_THANKS for word in words)
    # The phrase may begin with a word that is also courtesy ("quick question", "help me").
    return any(phrase.fullmatch(" ".join(words[start:])) for start in range(lead + 1))


def says_something(text: str, min_content_words: int) -> bool:
    """True when ``text`` has ``min_content_words`` words that are neither courtesy nor fillers."""
    content = [word for word in content_words(text) if word not in _COURTESY_WORDS]
    return len(content) >= min_content_words


@dataclass(frozen=True)
class Trim:
    """What is left of a message to read the intent from, and what its courtesy alone said.

    ``said`` is the intent the message has when the rest turns out to be nothing we handle
    (out of scope, not understood): "thank" after leading thanks ("merci hé, ge zijt een schat"),
    "goodbye" with a sign-off ("i'll leave it there for today, bye"); None after a greeting or
    thanks in advance ("hi, will it snow tomorrow?", "thanks alvast. wat is het weer morgen?",
    "... thanks": the rest stands).
    """

    text: str
    said: Optional[str]


def split_courtesy(text: str, min_content_words: int = 2) -> Optional[Trim]:
    """``text`` without a leading and a trailing courtesy clause, or None to keep it whole."""
    clauses = _CLAUSE.findall(text)
    start, end = 0, len(clauses)
    while start < end and (is_courtesy(clauses[start]) or not _words(clauses[start])):
        start += 1
    while end > start and (is_courtesy(clauses[end - 1]) or not _words(clauses[end - 1])):
        end -= 1
    if start == 0 and end == len(clauses):
        return None
    kept = "".join(clauses[start:end]).strip().rstrip(",;:-–—").rstrip()
    if not kept or not says_something(kept, min_content_words):
        return None
    leading = set(_words("".join(clauses[:start])))
    trailing = set(_words("".join(clauses[end:])))
    if (leading | trailing) & GOODBYES:
        said: Optional[str] = "goodbye"
    elif leading & THANKS and not leading & IN_ADVANCE:
        said = "thank"
    else:
        said = None
    return Trim(kept, said)


def trim_courtesy(text: str, min_content_words: int = 2) -> Optional[str]:
    """The text to read the intent from, or None to keep ``text`` whole (see ``split_courtesy``)."""
    trim = split_courtesy(text, min_content_words)
    return trim.text if trim else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class CourtesyTrim(ConfigOnlyComponent):
    """Drops courtesy clauses around a request from the text the intent is read from."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {"min_content_words": 2}

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Leaves the training examples as written (see the module docstring)."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Trims each message whose courtesy comes with a request."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            trim = split_courtesy(text, int(self.config["min_content_words"]))
            if trim is None:
                continue
            if message.get(ORIGINAL_TEXT) is None:
                message.set(ORIGINAL_TEXT, text)
            message.set(TEXT, trim.text)
            message.set(TRIMMED, {"said": trim.said}, add_to_output=True)
        return messages


# What the rest of a trimmed message may be read as for its courtesy to be what it says...
NOTHING_HANDLED = ("out_of_scope", "nlu_fallback")
# ... as long as no case or follow-up is a likely reading too ("cool thx. when does the new one
# arrive?": out of scope 0.59, ask_when 0.35 is answered as a follow-up when one is in hand).
MAX_OTHER_READING = 0.3
OVERRIDDEN_FROM = "courtesy_overrode"


def nothing_handled(said: str, intent: Dict[str, Any], ranking: List[Dict[str, Any]]) -> bool:
    """True when the reading is out of scope or not understood, and no case is a likely second.
    A sign-off with a rest that was not understood is goodbye, whatever came second ("ik ga ervan
    door, doeg": request_human 0.53 was second): the customer is leaving."""
    name = intent.get(INTENT_NAME_KEY)
    if name not in NOTHING_HANDLED:
        return False
    if said == "goodbye" and name == "nlu_fallback":
        return True
    return not any(
        reading.get(INTENT_NAME_KEY) not in SMALL_TALK
        and float(reading.get(PREDICTED_CONFIDENCE_KEY) or 0) >= MAX_OTHER_READING
        for reading in ranking
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class CourtesyIntent(ConfigOnlyComponent):
    """A trimmed message whose rest is nothing we handle is what its courtesy said.

    "merci hé, ge zijt een schat" is thanks, "ik ga ervan door, doeg" is goodbye: the trim left
    "ge zijt een schat" (out of scope) and "ik ga ervan door" (not understood). After a greeting
    or trailing thanks the rest's reading stands. Runs after FallbackClassifier and NonsenseGuard.
    """

    def process(self, messages: List[Message]) -> List[Message]:
        """Puts the courtesy's intent on trimmed messages whose rest is nothing we handle."""
        for message in messages:
            said = (message.get(TRIMMED) or {}).get("said")
            intent = message.get(INTENT) or {}
            if said and nothing_handled(said, intent, message.get(INTENT_RANKING_KEY) or []):
                message.set(OVERRIDDEN_FROM, intent.get(INTENT_NAME_KEY), add_to_output=True)
                message.set(INTENT, {INTENT_NAME_KEY: said, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
        return messages
