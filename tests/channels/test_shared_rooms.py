"""socket.io rooms shared by the Rasa replicas (bot/channels/shared_rooms.py), on the real Sanic
app and a real Redis: a message sent from another replica reaches the customer's socket once, a
local one is not delivered twice, and what arrives on the channel is never unpickled."""

from __future__ import annotations

import asyncio
import json
import pickle
import time

import pytest
import redis as redis_py

from tests.channels.test_rate_limit import webchat

pytestmark = pytest.mark.asyncio

CHANNEL = "helder:socketio:0"


async def subscribed(redis_url: str, replicas: int) -> None:
    """Waits until ``replicas`` listeners are on the channel (a listener starts with the first socket)."""
    client = redis_py.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 10
        while dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) < replicas:
            assert time.monotonic() < deadline, "no listener on the rooms channel"
            await asyncio.sleep(0.05)
    finally:
        client.close()


async def texts_of(browser, expected: int, settle: float = 0.5):
    deadline = time.monotonic() + 10
    while len(browser.received) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(settle)  # a duplicate would arrive meanwhile
    return [m.get("text") for m in browser.received]


async def test_a_message_from_the_other_replica_reaches_the_socket_once(redis_url):
    async with webchat(redis_url) as one, webchat(redis_url) as two:
        browser = await one.browser()
        other = await two.browser()  # starts the second replica's listener too
        await subscribed(redis_url, 2)
        await two.channel.get_output_channel().send_text_message(browser.session_id, "Hallo, met Eva van Helder.")
        assert await texts_of(browser, 1) == ["Hallo, met Eva van Helder."]
        await one.channel.get_output_channel().send_text_message(browser.session_id, "Nog iets?")
        assert await texts_of(browser, 2) == ["Hallo, met Eva van Helder.", "Nog iets?"], "delivered twice"
        assert other.received == [], "another customer's socket got it"


async def test_only_json_is_read_from_the_channel(redis_url):
    async with webchat(redis_url) as one:
        browser = await one.browser()
        await subscribed(redis_url, 1)
        emit = {"method": "emit", "event": "bot_uttered", "data": {"text": "via json"}, "namespace": "/",
                "room": browser.session_id, "skip_sid": None, "callback": None, "host_id": "another-replica"}
        client = redis_py.Redis.from_url(redis_url)
        try:
            client.publish(CHANNEL, pickle.dumps(dict(emit, data={"text": "via pickle"})))
            client.publish(CHANNEL, json.dumps(emit))
        finally:
            client.close()
        assert await texts_of(browser, 1) == ["via json"]


async def test_without_redis_the_replica_still_delivers_its_own_messages(redis_url):
    """Redis away: no sharing, but the customer on this replica still gets every message."""
    from scripts.stack import free_port

    async with webchat(redis_url, redis_port=free_port()) as alone:
        browser = await alone.browser()  # session_confirm came without Redis
        await alone.channel.get_output_channel().send_text_message(browser.session_id, "Nog steeds hier.")
        assert await texts_of(browser, 1) == ["Nog steeds hier."]
