"""A customer who is fed up gets a person, not another question.

Read from the words of the latest message, in Dutch and English: swearing, "belachelijk",
"useless", "this is the third time", "ik ben het zat", shouting in capitals, a row of "!!!", "😡". Used
where the bot would otherwise ask again (a misunderstood message) or restate (a problem that is
still not solved): there the conversation goes to a person with reason ``frustration``, which the
agent sees on the card and the insights report counts. Anger in the first description of a case
is not a reason on its own: the case itself is handled (a complaint goes to a person anyway).
"""

from __future__ import annotations

import re

_WORDS = re.compile(
    r"\b(?:"
    # Dutch and Flemish
    r"belachelijk|schandalig|schande|waardeloos|waardeloze|klote|kut\w*|godverdomme|verdomme|gvd|tering\w*|"
    r"ik ben (?:het|er) (?:\w+ )?(?:zat|beu|spuugzat|kotsbeu)|ik word gek|ik ben er (?:\w+ )?klaar mee|"
    r"wat een (?:zooi|puinhoop|bende)|"
    r"hoe vaak (?:moet|nog)|(?:al )?voor de (?:derde|vierde|vijfde|zoveelste) keer|zoveelste keer|"
    r"(?:dit|het) is (?:toch )?niet normaal|onbeschoft|amateurs?|prutsers?|niet acceptabel|onacceptabel|niet goed genoeg|"
    # English
    r"ridiculous|useless|pathetic|disgraceful|unacceptable|not acceptable|not good enough|outrageous|rubbish|joke of a|"
    r"fuck\w*|shit\w*|damn|wtf|bloody|"
    r"fed up|sick (?:and tired )?of|had enough|(?:for )?the (?:third|fourth|fifth|umpteenth) time|"
    r"how many times|waste of (?:my )?time|this is a joke"
    r")\b",
    re.IGNORECASE)
_EXCLAMATIONS = re.compile(r"[!?]*![!?]*!+[!?]*!")  # three or more "!" in a row (with "?" between)
_ANGRY = re.compile("[\U0001F620\U0001F621\U0001F92C\U0001F595]")  # 😠 😡 🤬 🖕


def frustrated(text: str) -> bool:
    """True when the message shows the customer is fed up."""
    if not text:
        return False
    if _WORDS.search(text) or _EXCLAMATIONS.search(text) or _ANGRY.search(text):
        return True
    letters = [ch for ch in text if ch.isalpha()]
    # Shouting: a message of some length in capitals ("WAAROM WERKT DIT NIET").
    return len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) >= 0.8
