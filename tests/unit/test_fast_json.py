"""bot/fast_json.py writes what json.dumps writes (read back, the same values), and falls back to it."""

import json
import math

import pytest

from bot import fast_json

VALUES = [
    {"sender_id": "c1", "events": [{"event": "user", "text": "mijn föhn is kapot / broken 🙁", "timestamp": 1796405326.213701,
                                    "parse_data": {"intent": {"name": "defective_product", "confidence": 0.9843211}}}],
     "slots": {"topic_facts": {"order_number": "2024118832", "amount": 0.1 + 0.2}, "bot_attempts": [], "x": None}},
    {"big": 2 ** 70, "small": -(2 ** 63), "tiny": 1e-7, "huge": 1e300, "bool": True},
    {1: "an int key", "nested": [[], {}, ""]},
    "a string",
    [1, 2.5, None],
]


@pytest.mark.parametrize("value", VALUES)
def test_reads_back_as_what_json_dumps_writes(value):
    assert json.loads(fast_json.dumps(value)) == json.loads(json.dumps(value))


def test_what_ujson_refuses_is_written_by_json_dumps():
    text = fast_json.dumps({"confidence": float("nan"), "limit": float("inf")})
    assert text == json.dumps({"confidence": float("nan"), "limit": float("inf")})
    assert math.isnan(json.loads(text)["confidence"])


def test_what_neither_can_write_raises_json_dumps_type_error():
    with pytest.raises(TypeError, match="not JSON serializable"):
        fast_json.dumps({"ids": {1, 2}})


def test_non_ascii_is_escaped_as_json_dumps_escapes_it():
    assert fast_json.dumps({"t": "föhn"}) == '{"t":"f\\u00f6hn"}'
