"""The WhatsApp channel: Meta's webhook in (verification, signatures, redeliveries, stale
messages, media, replies) and the Graph API out (splitting, buttons, lists, the 24-hour window)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace

import pytest

from bot.channels import whatsapp_state as state
from bot.channels.whatsapp import (
    MAX_INBOUND_TEXT_CHARS,
    MAX_TEXT_CHARS,
    UNSUPPORTED_MEDIA,
    WhatsAppInput,
    WhatsAppOutput,
    WhatsAppSettings,
    mask_phone,
    shorten,
    split_text,
)
from contract import keys
from contract.whatsapp_window import window_seconds_left
from scripts.whatsapp_customer import (
    PHONE_NUMBER_ID,
    button_reply,
    delivery,
    list_reply,
    message,
    sign,
    status,
)
from tests.channels.conftest import ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, whatsapp_webhook

SANNE = "31612345678"
JAMES = "447700900123"


def text_from(wa_id: str, text: str, **kwargs) -> dict:
    return delivery([message(wa_id, text=text, **kwargs)],
                    contacts=[{"profile": {"name": "Sanne"}, "wa_id": wa_id}])


# -- verification handshake ----------------------------------------------------------------
@pytest.mark.asyncio
async def test_verification_handshake_returns_the_challenge(webhook):
    status_code, body = await webhook.get("/webhook", {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                                       "hub.challenge": "1158201444"})
    assert (status_code, body) == (200, "1158201444")


@pytest.mark.parametrize("mode, token", [("subscribe", "wrong-token"), ("subscribe", ""), ("unsubscribe", VERIFY_TOKEN)])
@pytest.mark.asyncio
async def test_verification_with_a_wrong_token_or_mode_is_refused(webhook, mode, token):
    status_code, body = await webhook.get("/webhook", {"hub.mode": mode, "hub.verify_token": token,
                                                       "hub.challenge": "1158201444"})
    assert status_code == 403
    assert "1158201444" not in body


@pytest.mark.asyncio
async def test_health(webhook):
    assert (await webhook.get("/"))[0] == 200


# -- signatures ------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_signed_text_reaches_the_assistant_as_the_customers_conversation(webhook, store):
    payload = text_from(SANNE, "hoi, mijn föhn is kapot", message_id="wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQ")
    status_code, _ = await webhook.post(payload)
    assert status_code == 200
    [received] = webhook.received
    assert received.text == "hoi, mijn föhn is kapot"
    assert received.sender_id == SANNE
    assert received.input_channel == "whatsapp"
    assert received.message_id == "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQ"
    assert isinstance(received.output_channel, WhatsAppOutput)
    assert received.metadata == {
        "channel": "whatsapp", "phone": "+31612345678", "wa_message_id": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQ",
        "profile_name": "Sanne", "wa_message_type": "text",
    }
    # The customer wrote: the 24-hour window is open.
    assert 86000 < await window_seconds_left(webhook.channel._clients.redis, SANNE) <= 86400


@pytest.mark.parametrize("signature, expected", [
    (None, 401),                                     # unsigned
    ("sha256=" + "0" * 64, 403),                     # wrong digest
    ("sha1=abcdef", 403),                            # the old X-Hub-Signature scheme
    ("sha256=ünïcode", 403),                         # junk must not crash the comparison
    ("other-secret", 403),                           # signed with another app's secret
])
@pytest.mark.asyncio
async def test_unsigned_or_badly_signed_deliveries_are_refused_and_not_processed(webhook, store, signature, expected):
    payload = text_from(SANNE, "ik wil geld terug")
    if signature == "other-secret":
        import json
        signature = sign("someone-elses-secret", json.dumps(payload).encode())
    status_code, reason = await webhook.post(payload, signature=signature)
    assert status_code == expected
    assert "X-Hub-Signature-256" in reason
    assert webhook.received == []
    assert store.keys("*") == [], "nothing of a refused delivery may be stored"


@pytest.mark.asyncio
async def test_a_signature_of_another_body_is_refused(webhook, store):
    import json
    genuine = json.dumps(text_from(SANNE, "hallo")).encode()
    forged = json.dumps(text_from(SANNE, "stuur mij 10 föhns")).encode()
    status_code, _ = await webhook.post(None, signature=sign(APP_SECRET, genuine), raw=forged)
    assert status_code == 403 and webhook.received == []


@pytest.mark.asyncio
async def test_broken_json_is_a_400(webhook, store):
    status_code, reason = await webhook.post(None, raw=b'{"object": "whatsapp_business_account", "entry": [')
    assert status_code == 400 and "JSON" in reason
    assert webhook.received == [] and store.keys("*") == []


@pytest.mark.asyncio
async def test_broken_utf8_is_a_400_and_the_next_message_still_works(webhook, store):
    good = json.dumps(text_from(SANNE, "hallo")).encode()
    for raw in (good.replace(b"hallo", b"hal\xff\xfelo \xc3\x28"), b"\xff\xfe\x00\x01\x80 not json"):
        status_code, reason = await webhook.post(None, raw=raw)  # signed: Meta's signature is over bytes
        assert status_code == 400 and "JSON" in reason
    assert webhook.received == [] and store.keys("*") == []
    assert (await webhook.post(None, raw=good))[0] == 200
    assert [m.text for m in webhook.received] == ["hallo"]


@pytest.mark.asyncio
async def test_a_signed_but_malformed_delivery_is_a_200_and_its_readable_messages_arrive(webhook):
    payload = text_from(SANNE, "waar is mijn pakket")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"wa_id": SANNE, "profile": "not an object"}]
    value["statuses"] = [{"status": "failed", "errors": "not a list"}]
    value["messages"].append({"from": SANNE, "id": "wamid.odd", "type": "text", "text": "not an object",
                              "timestamp": "1e999"})
    payload["entry"] = ["not an entry", {"changes": "not a list"}] + payload["entry"]
    for malformed in (payload, {"entry": "text"}, {"entry": [{"changes": [{"value": ["x"]}]}]}, {"object": 1}):
        assert (await webhook.post(malformed))[0] == 200
    assert [m.text for m in webhook.received] == ["waar is mijn pakket", ""]
    assert (await webhook.post(text_from(SANNE, "hallo?")))[0] == 200
    assert webhook.received[-1].text == "hallo?"


@pytest.mark.asyncio
async def test_a_100_kb_text_reaches_the_assistant_cut_to_whatsapps_limit(webhook):
    huge = "mijn internet doet het niet meer sinds gisteren. " * 2100
    assert len(huge.encode()) > 100_000
    assert (await webhook.post(text_from(SANNE, huge)))[0] == 200
    [received] = webhook.received
    assert 0 < len(received.text) <= MAX_INBOUND_TEXT_CHARS and huge.startswith(received.text)
    assert received.text.endswith("gisteren.")  # cut between sentences, not inside a word
    assert (await webhook.post(text_from(SANNE, "hallo?")))[0] == 200
    assert webhook.received[-1].text == "hallo?"


@pytest.mark.asyncio
async def test_control_characters_are_dropped_and_emoji_kept(webhook):
    await webhook.post(text_from(SANNE, "mijn\x00 pakket\x07 is\x1b[0m kwijt\x7f\x85\nregel 2\tmet tab"))
    await webhook.post(text_from(SANNE, "👨‍👩‍👧‍👦👍🏽🇳🇱"))
    await webhook.post(text_from(SANNE, "\x00\x01"))
    await webhook.post(None, raw=json.dumps(text_from(SANNE, "kapot \ud83d")).encode())  # JSON's "\\ud83d"
    assert [m.text for m in webhook.received] == [
        "mijn pakket is[0m kwijt\nregel 2\tmet tab", "👨‍👩‍👧‍👦👍🏽🇳🇱", "", "kapot \ufffd"]


# -- deliveries ------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_redelivered_message_is_handled_once(webhook):
    payload = text_from(SANNE, "waar blijft mijn bestelling")
    assert (await webhook.post(payload))[0] == 200
    assert (await webhook.post(payload))[0] == 200  # Meta retries: same message id
    # ...also when the copies arrive at the same time.
    other = text_from(SANNE, "hallo?")
    results = await asyncio.gather(*(webhook.post(other) for _ in range(4)))
    assert all(code == 200 for code, _ in results)
    assert [m.text for m in webhook.received] == ["waar blijft mijn bestelling", "hallo?"]


@pytest.mark.asyncio
async def test_a_stale_message_is_not_answered_but_opens_the_window(webhook):
    an_hour_ago = time.time() - 3600
    payload = delivery([message(SANNE, text="is er een storing?", timestamp=an_hour_ago),
                        message(SANNE, text="hallo, nog iemand daar?")])
    assert (await webhook.post(payload))[0] == 200
    assert [m.text for m in webhook.received] == ["hallo, nog iemand daar?"]
    assert await window_seconds_left(webhook.channel._clients.redis, SANNE) > 86000


@pytest.mark.asyncio
async def test_only_a_stale_message_reaches_nobody(webhook):
    payload = delivery([message(SANNE, text="is er een storing?", timestamp=time.time() - 601)])
    assert (await webhook.post(payload))[0] == 200
    assert webhook.received == []


@pytest.mark.asyncio
async def test_status_callbacks_are_not_messages(webhook, store):
    payload = delivery(statuses=[status(SANNE, "sent"), status(SANNE, "delivered"), status(SANNE, "read"),
                                 dict(status(SANNE, "failed"), errors=[{"code": 131047, "title": "Re-engagement"}])])
    assert (await webhook.post(payload))[0] == 200
    assert webhook.received == []
    assert store.keys("*") == []


@pytest.mark.parametrize("kind, content", [
    ("image", {"image": {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc"}}),
    ("audio", {"audio": {"id": "1479537139650974", "mime_type": "audio/ogg; codecs=opus", "voice": True}}),
    ("video", {"video": {"id": "1479537139650975", "mime_type": "video/mp4"}}),
    ("document", {"document": {"id": "1479537139650976", "filename": "bon.pdf", "mime_type": "application/pdf"}}),
    ("location", {"location": {"latitude": 52.09, "longitude": 5.12, "name": "Utrecht"}}),
    ("sticker", {"sticker": {"id": "1479537139650977", "mime_type": "image/webp", "animated": False}}),
    ("contacts", {"contacts": [{"name": {"formatted_name": "Piet"}, "phones": [{"phone": "+31600000000"}]}]}),
])
@pytest.mark.asyncio
async def test_media_becomes_unsupported_media_without_nlu(webhook, kind, content):
    assert (await webhook.post(delivery([message(SANNE, kind, **content)])))[0] == 200
    [received] = webhook.received
    assert received.text == UNSUPPORTED_MEDIA == "/unsupported_media"
    assert received.metadata["wa_message_type"] == kind
    assert received.metadata["phone"] == "+31612345678"


@pytest.mark.asyncio
async def test_button_and_list_replies_pass_their_payload(webhook):
    payload = delivery([
        button_reply(SANNE, "/affirm", "Ja, klopt"),
        list_reply(SANNE, "/order_status", "Mijn bestelling"),
        button_reply(SANNE, "", "Nee"),  # no id: the title is what the customer said
        message(SANNE, "button", button={"payload": "/request_human", "text": "Medewerker"}),
    ])
    assert (await webhook.post(payload))[0] == 200
    assert [m.text for m in webhook.received] == ["/affirm", "/order_status", "Nee", "/request_human"]
    assert [m.metadata["wa_message_type"] for m in webhook.received] == ["interactive"] * 3 + ["button"]


@pytest.mark.asyncio
async def test_reactions_are_not_answered(webhook):
    reaction = message(SANNE, "reaction", reaction={"message_id": "wamid.abc", "emoji": "👍"})
    assert (await webhook.post(delivery([reaction])))[0] == 200
    assert webhook.received == []


@pytest.mark.asyncio
async def test_messages_for_another_business_number_are_left_alone(webhook):
    payload = delivery([message(SANNE, text="hallo")], phone_number_id="999999999")
    assert (await webhook.post(payload))[0] == 200
    assert webhook.received == []


@pytest.mark.asyncio
async def test_deliveries_for_another_phone_number_id_are_logged_once_per_id(webhook, caplog):
    caplog.set_level(logging.INFO, logger="bot.channels.whatsapp")
    for other in ("999999999", "999999999", "888888888", "999999999"):
        payload = delivery([message(SANNE, text="hallo")], phone_number_id=other)
        assert (await webhook.post(payload))[0] == 200
    assert webhook.received == []
    assert (await webhook.post(text_from(SANNE, "hallo")))[0] == 200  # our own number: handled, no warning
    assert [m.text for m in webhook.received] == ["hallo"]
    warnings = [r for r in caplog.records if "phone number id" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING] * 2
    assert "999999999" in warnings[0].getMessage() and "888888888" in warnings[1].getMessage()
    assert all(PHONE_NUMBER_ID in r.getMessage() for r in warnings), "names the configured id"
    assert SANNE not in caplog.text


@pytest.mark.asyncio
async def test_with_the_local_default_phone_number_id_every_delivery_is_reported(redis_url, graph, store, caplog):
    caplog.set_level(logging.WARNING, logger="bot.channels.whatsapp")
    async with whatsapp_webhook(redis_url, graph.url, phone_number_id="0") as webhook:
        for text in ("hallo", "is daar iemand?"):
            assert (await webhook.post(text_from(SANNE, text)))[0] == 200
        assert webhook.received == []
    [warning] = [r.getMessage() for r in caplog.records if "phone number id" in r.getMessage()]
    assert PHONE_NUMBER_ID in warning and "configured for phone number id 0" in warning
    assert "WHATSAPP_PHONE_NUMBER_ID" in warning


# -- replies ---------------------------------------------------------------------------------
def open_window(store, wa_id: str, ago: float = 60) -> None:
    store.set(keys.whatsapp_window(wa_id), int(time.time() - ago))


@pytest.mark.asyncio
async def test_replies_go_to_the_graph_api_with_the_bearer_token(webhook, graph, store):
    open_window(store, SANNE)
    await webhook.channel.get_output_channel().send_text_message(SANNE, "Ik stuur u vandaag een nieuwe föhn.")
    [request] = graph.requests
    assert request.method == "POST" and request.path == "/v19.0/106540352242922/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": SANNE,
                            "type": "text", "text": {"preview_url": False, "body": "Ik stuur u vandaag een nieuwe föhn."}}


@pytest.mark.asyncio
async def test_long_text_is_split_at_paragraphs_then_sentences(webhook, graph, store):
    open_window(store, SANNE)
    paragraphs = [f"Alinea {n}. " + "Dit is een zin over uw bestelling. " * 55 for n in range(1, 4)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert MAX_TEXT_CHARS < len(text) < 2 * MAX_TEXT_CHARS
    await webhook.channel.get_output_channel().send_text_message(SANNE, text)
    sent = graph.texts(SANNE)
    assert len(sent) == 2 and all(len(part) <= MAX_TEXT_CHARS for part in sent)
    assert "\n\n".join(sent) == text, "cut exactly at a paragraph break, nothing lost"

    graph.clear()
    one_paragraph = "Dit is een zin over uw bestelling. " * 250
    await webhook.channel.get_output_channel().send_text_message(SANNE, one_paragraph)
    sent = graph.texts(SANNE)
    assert len(sent) == 3 and all(len(part) <= MAX_TEXT_CHARS for part in sent)
    assert all(part.endswith("bestelling.") for part in sent), "cut after a sentence"


def test_split_text_cuts_between_words_when_there_is_no_sentence():
    text = "woord " * 1000
    parts = split_text(text, 100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts) == text.strip()
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_titles_are_shortened_at_a_word():
    assert shorten("Nee, ik wil iets anders vragen", 20) == "Nee, ik wil iets…"
    assert shorten("Ja", 20) == "Ja"
    assert len(shorten("Onafhankelijkheidsverklaringen", 20)) == 20


@pytest.mark.asyncio
async def test_two_buttons_become_an_interactive_button_message(webhook, graph, store):
    open_window(store, SANNE)
    buttons = [{"title": "Ja, dat klopt", "payload": "/affirm"},
               {"title": "Nee, ik wil iets anders vragen", "payload": "/deny"}]
    await webhook.channel.get_output_channel().send_text_with_buttons(
        SANNE, "Bedoelt u dat uw föhn kapot is?", buttons)
    [sent] = graph.messages(SANNE)
    assert sent["type"] == "interactive"
    interactive = sent["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Bedoelt u dat uw föhn kapot is?"}
    replies = [b["reply"] for b in interactive["action"]["buttons"]]
    assert [r["id"] for r in replies] == ["/affirm", "/deny"]
    assert [r["title"] for r in replies] == ["Ja, dat klopt", "Nee, ik wil iets…"]
    assert all(len(r["title"]) <= 20 for r in replies)


@pytest.mark.asyncio
async def test_five_buttons_become_a_list(webhook, graph, store):
    open_window(store, SANNE)
    titles = ["Bestelling", "Storing op mijn adres", "Product kapot of defect", "Geld terug voor een retour",
              "Inloggen lukt niet"]
    buttons = [{"title": t, "payload": f"/choice_{n}"} for n, t in enumerate(titles)]
    await webhook.channel.get_output_channel().send_text_with_buttons(
        SANNE, "Waar gaat uw vraag over? Kies hieronder een onderwerp.", buttons)
    [sent] = graph.messages(SANNE)
    interactive = sent["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "Kies een optie"
    [section] = interactive["action"]["sections"]
    rows = section["rows"]
    assert [r["id"] for r in rows] == [f"/choice_{n}" for n in range(5)]
    assert all(len(r["title"]) <= 24 for r in rows)
    assert rows[3]["title"] == "Geld terug voor een…" and rows[3]["description"] == "Geld terug voor een retour"
    assert "description" not in rows[0]


@pytest.mark.asyncio
async def test_a_closed_window_sends_the_template_once_in_the_customers_language(webhook, graph, store):
    output = webhook.channel.get_output_channel()
    # James has an English number, but this conversation is in Dutch (the tracker says so).
    await webhook.agent.set_language(JAMES, "nl")
    open_window(store, JAMES)
    await output.send_text_message(JAMES, "Ik heb uw retour ontvangen en stort het bedrag terug.")
    graph.clear()
    open_window(store, JAMES, ago=25 * 3600)

    await output.send_text_message(JAMES, "Het bedrag staat morgen op uw rekening.")
    await output.send_text_with_buttons(JAMES, "Kan ik nog iets doen?", [{"title": "Nee", "payload": "/deny"}])
    [sent] = graph.messages(JAMES)
    assert sent["type"] == "template"
    assert sent["template"] == {"name": "helder_reply_nl", "language": {"code": "nl"}}
    assert graph.texts(JAMES) == [], "no free text outside the window"

    # The customer answers the template: free text flows again.
    await state.record_inbound(webhook.channel._clients.redis, JAMES, time.time())
    await output.send_text_message(JAMES, "Het bedrag staat morgen op uw rekening.")
    assert graph.texts(JAMES) == ["Het bedrag staat morgen op uw rekening."]


@pytest.mark.asyncio
async def test_a_closed_window_for_an_english_conversation_uses_the_english_template(webhook, graph, store):
    output = webhook.channel.get_output_channel()
    await webhook.agent.set_language(SANNE, "en")  # Sanne has a Dutch number, but writes English
    open_window(store, SANNE)
    await output.send_text_message(SANNE, "Your replacement hair dryer is on its way and arrives tomorrow.")
    open_window(store, SANNE, ago=24 * 3600 + 1)
    graph.clear()
    await output.send_text_message(SANNE, "Did the replacement arrive?")
    assert [m["template"]["name"] for m in graph.messages(SANNE)] == ["helder_reply_en"]


@pytest.mark.parametrize("wa_id, template", [(JAMES, "helder_reply_en"), (SANNE, "helder_reply_nl"),
                                             ("33612345678", "helder_reply_nl")])
@pytest.mark.asyncio
async def test_without_any_known_window_the_template_follows_the_phone_number(webhook, graph, wa_id, template):
    await webhook.channel.get_output_channel().send_text_message(wa_id, "Goedemiddag, u spreekt met Eva.")
    assert [m.get("template", {}).get("name") for m in graph.messages(wa_id)] == [template]


@pytest.mark.asyncio
async def test_a_graph_api_refusal_for_the_window_falls_back_to_the_template(webhook, graph, store):
    open_window(store, SANNE)  # we think the window is open, Meta knows better
    graph.fail_next(status=400, code=131047)
    await webhook.channel.get_output_channel().send_text_message(SANNE, "Uw pakket is onderweg.")
    assert [m["type"] for m in graph.messages(SANNE)] == ["text", "template"]


@pytest.mark.asyncio
async def test_agent_messages_via_rasas_http_api_use_the_whatsapp_output(webhook):
    # What rasa.server does for POST /conversations/<id>/tracker/events?output_channel=latest.
    from rasa.server import _get_output_channel
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events(SANNE, [UserUttered("hoi", input_channel="whatsapp")])
    app = SimpleNamespace(ctx=SimpleNamespace(input_channels=[webhook.channel]))
    request = SimpleNamespace(args={"output_channel": "latest"}, app=app)
    assert isinstance(_get_output_channel(request, tracker), WhatsAppOutput)


@pytest.mark.asyncio
async def test_logs_never_show_the_token_or_a_whole_phone_number(webhook, graph, store, caplog):
    caplog.set_level(logging.INFO)
    await webhook.post(text_from(SANNE, "hallo"))
    await webhook.post(text_from(SANNE, "oud bericht", timestamp=time.time() - 7200))
    await webhook.post(text_from(SANNE, "x"), signature="sha256=00")
    await webhook.channel.get_output_channel().send_text_message("447700900999", "Goedemiddag.")
    graph.fail_next(status=401, code=190, message="Invalid OAuth access token.")
    open_window(store, SANNE)
    await webhook.channel.get_output_channel().send_text_message(SANNE, "Goedemiddag.")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "whatsapp" in logged
    assert ACCESS_TOKEN not in logged and APP_SECRET not in logged
    assert SANNE not in logged and "447700900999" not in logged
    assert mask_phone(SANNE) == "+31******678"


# -- configuration -----------------------------------------------------------------------------
def test_missing_credentials_fail_loudly():
    from rasa.shared.exceptions import RasaException

    with pytest.raises(RasaException):
        WhatsAppInput.from_credentials(None)
    with pytest.raises(RasaException, match="app_secret"):
        WhatsAppSettings.from_credentials({"verify_token": "v", "access_token": "a", "phone_number_id": "1"})
    settings = WhatsAppSettings.from_credentials({"verify_token": "v", "app_secret": "app-secret-value",
                                                  "access_token": "token-value", "phone_number_id": "1",
                                                  "redis_port": "6390"})
    assert settings.redis_port == 6390 and settings.graph_api_url == "https://graph.facebook.com/v19.0"
    assert "app-secret-value" not in repr(settings) and "token-value" not in repr(settings)


def test_credentials_yml_loads_with_the_stacks_environment(stack_channels):
    env, channels = stack_channels
    [whatsapp] = [c for c in channels if isinstance(c, WhatsAppInput)]
    assert whatsapp.url_prefix() == "whatsapp"
    assert whatsapp.settings.graph_api_url == "https://graph.facebook.com/v19.0"
    assert whatsapp.settings.app_secret == env["WHATSAPP_APP_SECRET"] and len(whatsapp.settings.app_secret) >= 32
    assert whatsapp.settings.redis_port == int(env["REDIS_PORT"])
    assert whatsapp.settings.template("en") == ("helder_reply_en", "en")
