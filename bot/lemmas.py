"""Lookup lemmatisation for Dutch and English from spacy-lookups-data, without a trained model.

No trained spaCy pipeline can be downloaded here, and a blank pipeline has no tagger, so the
part-of-speech-driven rule lemmatizer cannot run as designed. This module uses the same data
differently: first the lookup table, then the exception lists, then the suffix rules of every
part of speech, accepting a candidate only when it is a known lemma in spaCy's index. Dutch
present-tense verb forms ("werkt", "maakt", "belt") are missing from both the table and the
rules, so a few stem rules (checked against the verb index) cover them.
"""

from __future__ import annotations

from functools import cache
from typing import Dict, FrozenSet, List, Tuple

from spacy.lookups import load_lookups

_PARTS_OF_SPEECH = ("verb", "noun", "adj")

# The Dutch lookup table maps some closed-class words to unrelated lemmas ("het" → "hebben",
# "niet" → "nieten", "mijn" → "mijnen"); these words are their own lemma.
_DUTCH_CLOSED_CLASS = frozenset(
    """
    ik jij je u uw wij we jullie zij ze hij hem haar het mijn mij me jouw zijn ons onze hun hen
    de een niet geen wel nog al ook maar dan dat die dit deze wat waar hoe wie welk welke er
    hier daar als of want dus toen nu nooit altijd al alleen even heel erg zo te om op in aan
    met voor van naar bij uit over tot door na sinds tegen zonder
    """.split()
)


class LookupLemmatizer:
    """Lemmatises single words of one language; build it with :func:`get_lemmatizer`."""

    def __init__(self, lang: str) -> None:
        tables = load_lookups(lang, ["lemma_lookup", "lemma_rules", "lemma_index", "lemma_exc"], strict=False)
        self.lang = lang
        self._lookup = tables.get_table("lemma_lookup") if tables.has_table("lemma_lookup") else {}
        self._rules: Dict[str, List[Tuple[str, str]]] = {}
        self._index: Dict[str, FrozenSet[str]] = {}
        self._exceptions: Dict[str, Dict[str, List[str]]] = {}
        for pos in _PARTS_OF_SPEECH:
            if tables.has_table("lemma_rules"):
                self._rules[pos] = [tuple(rule) for rule in tables.get_table("lemma_rules").get(pos, [])]
            if tables.has_table("lemma_index"):
                self._index[pos] = frozenset(tables.get_table("lemma_index").get(pos, []))
            if tables.has_table("lemma_exc"):
                self._exceptions[pos] = dict(tables.get_table("lemma_exc").get(pos, {}))

    def lemma(self, word: str) -> str:
        """The lemma of ``word`` (lower-cased); the word itself when nothing is known."""
        lower = word.lower()
        if self.lang == "nl":
            # The Dutch table is noisy ("werken" → "werk"): trust spaCy's lemma index first.
            if lower in _DUTCH_CLOSED_CLASS or self._is_known_lemma(lower):
                return lower
        for pos in _PARTS_OF_SPEECH:
            exceptions = self._exceptions.get(pos, {}).get(lower)
            if exceptions:
                return exceptions[0]
        found = self._lookup.get(lower)
        if found and found != lower:
            return found
        for pos in _PARTS_OF_SPEECH:
            for old, new in self._rules.get(pos, []):
                if old and lower.endswith(old):
                    candidate = lower[: len(lower) - len(old)] + new
                    if candidate in self._index.get(pos, ()):
                        return candidate
        if self.lang == "nl":
            return self._dutch_verb(lower) or lower
        return lower

    def _is_known_lemma(self, word: str) -> bool:
        return any(word in self._index.get(pos, ()) for pos in _PARTS_OF_SPEECH)

    def _dutch_verb(self, word: str) -> str:
        """Infinitive of a Dutch present-tense form: werkt→werken, maakt→maken, belt→bellen."""
        verbs = self._index.get("verb", frozenset())
        stems = [word[:-1]] if word.endswith("t") and len(word) > 3 else []
        stems.append(word)
        for stem in stems:
            for candidate in _dutch_infinitives(stem):
                if candidate in verbs:
                    return candidate
        return ""


def _dutch_infinitives(stem: str) -> List[str]:
    """Candidate infinitives for a Dutch verb stem, most likely first."""
    if len(stem) < 2:
        return []
    candidates = [stem + "en"]
    # An open syllable loses its double vowel: maak → maken, stoor → storen.
    if len(stem) >= 3 and stem[-2] == stem[-3] and stem[-2] in "aeou":
        candidates.append(stem[:-2] + stem[-1] + "en")
    # A short vowel doubles the consonant: bel → bellen, stop → stoppen.
    if stem[-1] not in "aeiouy":
        candidates.append(stem + stem[-1] + "en")
    # Voiced endings: leef → leven, reis → reizen (also after an undoubled vowel).
    for voiceless, voiced in (("f", "v"), ("s", "z")):
        if stem.endswith(voiceless):
            base = stem[:-1]
            candidates.append(base + voiced + "en")
            if len(base) >= 2 and base[-1] == base[-2] and base[-1] in "aeou":
                candidates.append(base[:-1] + voiced + "en")
    return candidates


@cache
def get_lemmatizer(lang: str) -> LookupLemmatizer:
    """The process-wide lemmatizer for ``lang`` (tables load on first use, about a second)."""
    return LookupLemmatizer(lang)
