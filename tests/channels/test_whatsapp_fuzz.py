"""Property tests (hypothesis) of the WhatsApp webhook payload parsing.

``inbound_messages`` turns a Graph API delivery (the parsed JSON body) into customer messages.
Meta's payloads are nested objects whose shape we do not control, and a signed delivery may
still be malformed (a new field type, a proxy mangling it, a bug on their side). For any JSON
value, at any depth, parsing must never raise: what it cannot read it skips, and every message
it returns has the documented field types (so the webhook answers 200 and the assistant gets
only well-formed UserMessages). Deterministic (derandomize, no example database).
"""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.whatsapp import MAX_INBOUND_TEXT_CHARS, InboundMessage, inbound_messages

FUZZ = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
PHONE_NUMBER_ID = "123456789"

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.text(st.characters(), max_size=6),  # lone surrogates too, as JSON's "\\ud83d" gives them
    st.sampled_from(["text", "interactive", "button", "image", "reaction", "button_reply", "list_reply",
                     "failed", "31612345678", "+31 6 1234", "1e400", "nan", "-inf", PHONE_NUMBER_ID, "kapot \ud83d", "\x00\x1b"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def maybe(strategy):
    """Either the well-formed part or any JSON value in its place."""
    return st.one_of(strategy, JSON)


def obj(**fields):
    """A JSON object with (some of) the given fields, each possibly replaced by garbage."""
    return st.fixed_dictionaries({}, optional={name: maybe(value) for name, value in fields.items()})


MESSAGE = obj(
    id=st.text(min_size=1, max_size=10), **{"from": st.sampled_from(["31612345678", "447700900123", "abc", ""])},
    timestamp=st.one_of(st.integers(), st.text(max_size=6), st.floats()),
    type=st.sampled_from(["text", "interactive", "button", "image", "reaction", "system", "sticker", "new"]),
    text=obj(body=st.one_of(st.text(st.characters(), max_size=20), st.just("kapot \ud83d\x00"))),
    interactive=obj(type=st.sampled_from(["button_reply", "list_reply", "nfm_reply"]),
                    button_reply=obj(id=st.text(max_size=5), title=st.text(max_size=5)),
                    list_reply=obj(id=st.text(max_size=5), title=st.text(max_size=5))),
    button=obj(payload=st.text(max_size=5), text=st.text(max_size=5)),
)
VALUE = obj(
    messaging_product=st.just("whatsapp"),
    metadata=obj(phone_number_id=st.sampled_from([PHONE_NUMBER_ID, "999"])),
    contacts=st.lists(obj(wa_id=st.just("31612345678"), profile=obj(name=st.text(max_size=8))), max_size=2),
    messages=st.lists(MESSAGE, max_size=3),
    statuses=st.lists(obj(id=st.text(max_size=4), status=st.sampled_from(["failed", "sent"]),
                          recipient_id=st.text(max_size=6),
                          errors=st.lists(obj(code=st.integers(), title=st.text(max_size=5)), max_size=2)),
                      max_size=2),
)
PAYLOAD = obj(object=st.just("whatsapp_business_account"),
              entry=st.lists(obj(id=st.text(max_size=4), changes=st.lists(obj(field=st.just("messages"),
                                                                               value=VALUE), max_size=2)),
                             max_size=2))


def assert_documented(messages):
    assert isinstance(messages, list)
    for message in messages:
        assert isinstance(message, InboundMessage)
        assert isinstance(message.message_id, str) and message.message_id
        assert isinstance(message.wa_id, str) and message.wa_id.isdigit()
        assert isinstance(message.type, str) and message.type
        assert message.text is None or isinstance(message.text, str)
        if message.text is not None:
            message.text.encode("utf-8")  # storable: no lone surrogates
        assert message.timestamp is None or (isinstance(message.timestamp, float) and math.isfinite(message.timestamp))
        assert message.profile_name is None or isinstance(message.profile_name, str)


@FUZZ
@given(JSON)
def test_any_json_value_is_parsed_without_raising(payload):
    assert_documented(inbound_messages(payload, PHONE_NUMBER_ID))


@FUZZ
@given(PAYLOAD, st.sampled_from([PHONE_NUMBER_ID, None]))
def test_payloads_malformed_at_any_depth_are_parsed_without_raising(payload, phone_number_id):
    assert_documented(inbound_messages(payload, phone_number_id))


@FUZZ
@given(st.lists(st.one_of(st.text(st.characters(), max_size=30), st.sampled_from(["\ud83d", "a\x00b", "\x1b[0m"])),
                min_size=1, max_size=3), st.integers(0, 10_000))
def test_any_text_arrives_storable_without_control_characters_and_within_the_limit(texts, repeat):
    messages = [{"from": "31612345678", "id": f"wamid.{n}", "type": "text", "text": {"body": text * (repeat // 100 + 1)}}
                for n, text in enumerate(texts)]
    payload = {"entry": [{"changes": [{"value": {"messages": messages}}]}]}
    parsed = inbound_messages(payload, PHONE_NUMBER_ID)
    assert [m.message_id for m in parsed] == [m["id"] for m in messages]
    for message in parsed:
        message.text.encode("utf-8")
        assert len(message.text) <= MAX_INBOUND_TEXT_CHARS
        assert not any(ord(c) < 32 and c not in "\t\n\r" or 0x7f <= ord(c) <= 0x9f for c in message.text)


def test_the_well_formed_part_of_a_partly_malformed_delivery_still_arrives():
    good = {"from": "31612345678", "id": "wamid.1", "timestamp": "1700000000", "type": "text",
            "text": {"body": "hallo"}}
    payload = {"entry": [
        "not an entry", {"changes": "nope"},
        {"changes": [{"value": {"metadata": ["x"], "contacts": [{"wa_id": "31612345678", "profile": "Sanne"}],
                                "statuses": [{"status": "failed", "errors": ["x"]}],
                                "messages": [good, {"from": "+31 (0)", "id": "wamid.2"},
                                             {**good, "id": "wamid.3", "text": "not an object",
                                              "timestamp": "1e400"}]}}]},
    ]}
    messages = inbound_messages(payload, PHONE_NUMBER_ID)
    assert [(m.message_id, m.text, m.timestamp) for m in messages] == [
        ("wamid.1", "hallo", 1700000000.0), ("wamid.2", "/unsupported_media", None), ("wamid.3", "", None)]
