"""The WhatsApp channel takes the customer's language from the conversation's tracker (the
``language`` slot the assistant keeps), not from its own replies: for the template outside the
24-hour window, the label of a list, and the rate-limit notice."""

from __future__ import annotations

import logging
import time

import pytest

from contract import keys
from scripts.whatsapp_customer import delivery, message

SANNE = "31612345678"  # Dutch number
JAMES = "447700900123"  # British number
CHOICES = [{"title": t, "payload": f"/choice_{n}"} for n, t in enumerate(
    ["Bestelling", "Storing", "Product kapot", "Geld terug", "Inloggen"])]


def open_window(store, wa_id: str, ago: float = 60) -> None:
    store.set(keys.whatsapp_window(wa_id), int(time.time() - ago))


def list_label(graph, wa_id: str) -> str:
    [sent] = [m for m in graph.messages(wa_id) if m["type"] == "interactive"]
    return sent["interactive"]["action"]["button"]


@pytest.mark.asyncio
async def test_the_template_follows_the_tracker_not_the_language_of_the_replies(webhook, graph, store):
    await webhook.agent.set_language(SANNE, "en")
    open_window(store, SANNE)
    output = webhook.channel.get_output_channel()
    # An agent answers in Dutch once; the conversation is still in English.
    await output.send_text_message(SANNE, "Uw vervangende föhn is onderweg en wordt morgen bezorgd.")
    assert store.keys("whatsapp:lang:*") == [], "the channel keeps no language of its own"
    open_window(store, SANNE, ago=25 * 3600)
    graph.clear()
    await output.send_text_message(SANNE, "Did it arrive?")
    assert [m["template"]["name"] for m in graph.messages(SANNE)] == ["helder_reply_en"]


@pytest.mark.asyncio
async def test_an_agent_message_list_is_labelled_in_the_conversations_language(webhook, graph, store):
    await webhook.agent.set_language(SANNE, "en")
    open_window(store, SANNE)
    await webhook.channel.get_output_channel().send_text_with_buttons(SANNE, "Pick one.", CHOICES)
    assert list_label(graph, SANNE) == "Choose an option"


@pytest.mark.parametrize("text, label", [
    ("could you please tell me where my order is", "Choose an option"),  # a clear switch, as the assistant makes it
    ("ok", "Kies een optie"),                                              # too short to switch
    ("/choice_1", "Kies een optie"),                                       # a tapped button says nothing
])
@pytest.mark.asyncio
async def test_in_a_turn_the_list_follows_the_language_the_assistant_decides_for_the_message(
        webhook, graph, store, text, label):
    await webhook.agent.set_language(JAMES, "nl")  # a Dutch conversation on a British number
    assert (await webhook.post(delivery([message(JAMES, text=text)])))[0] == 200
    [received] = webhook.received
    await received.output_channel.send_text_with_buttons(JAMES, "…", CHOICES)
    assert list_label(graph, JAMES) == label


@pytest.mark.asyncio
async def test_a_tracker_store_that_fails_leaves_the_phone_number(webhook, graph, caplog):
    class BrokenStore:
        async def retrieve(self, sender_id):
            raise ConnectionError("tracker store down")

    caplog.set_level(logging.WARNING)
    webhook.agent.tracker_store = BrokenStore()
    await webhook.channel.get_output_channel().send_text_message(JAMES, "Good afternoon.")
    assert [m["template"]["name"] for m in graph.messages(JAMES)] == ["helder_reply_en"]
    assert "language unknown" in caplog.text and JAMES not in caplog.text


@pytest.mark.asyncio
async def test_the_channel_reads_the_agent_the_app_has_now(webhook, graph):
    """Rasa replaces app.ctx.agent when it loads another model: the channel follows."""
    from tests.channels.conftest import RecordingAgent

    french = "33612345678"  # no language from the number: Dutch unless the tracker says otherwise
    await webhook.agent.set_language(french, "nl")
    replacement = RecordingAgent()
    await replacement.set_language(french, "en")
    webhook.channel._clients._app.ctx.agent = replacement
    await webhook.channel.get_output_channel().send_text_message(french, "Hello.")
    assert [m["template"]["name"] for m in graph.messages(french)] == ["helder_reply_en"]
