"""Property tests (hypothesis) of the bilingual tokenizer on arbitrary text.

For any text in either language: no exception, every token is a non-blank piece of the text found
exactly at its offsets, tokens come in order without overlapping, and a message with any visible
character gets at least one token (so no message is featureless). Deterministic (derandomize, no
example database).
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.nlu.tokenizer import tokenize_text

FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

ANY_CHAR = st.characters(exclude_categories=("Cs",))
PIECES = st.sampled_from([
    "can't", "z'n", "a.b@c.nl", "3511 AB", "48213377", "€ 12,50", "👍🏽", "👨‍👩‍👧", "\x00", "\t", "\u00a0",
    "\u200b", "\u202e", "e\u0301", "...", "--", "(", ")", "\n\n", "ﬁ", "İ", "ß", "bestellingen", "werkt",
])
TEXTS = st.one_of(
    st.text(ANY_CHAR, max_size=200),
    st.lists(st.one_of(PIECES, st.text(ANY_CHAR, max_size=8)), max_size=30).map("".join),
    st.lists(st.one_of(PIECES, st.text(ANY_CHAR, max_size=8)), max_size=30).map(" ".join),
    st.tuples(st.text(ANY_CHAR, min_size=1, max_size=10), st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
)


@FUZZ
@given(TEXTS, st.sampled_from(["nl", "en"]))
def test_tokens_lie_within_the_text_at_their_offsets(text, lang):
    tokens = tokenize_text(text, lang)
    previous_end = 0
    for token in tokens:
        assert 0 <= token.start < token.end <= len(text)
        assert text[token.start:token.end] == token.text
        assert token.text.strip(), repr(token.text)
        assert token.start >= previous_end, "tokens overlap or are out of order"
        previous_end = token.end
        assert isinstance(token.lemma, str) and token.lemma
    if text.strip():
        assert tokens, f"no token for {text!r}"
