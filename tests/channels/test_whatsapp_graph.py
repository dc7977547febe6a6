"""The Graph API client (bot/channels/whatsapp/graph.py) against the fake Graph API on loopback:
429 and 5xx are tried again (bounded, after a backoff or the wait Retry-After asks for); any
other 4xx is final at once."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import time

import aiohttp
import pytest

from bot.channels.whatsapp.graph import GraphClient, is_retryable, retry_after_seconds
from scripts.stack import free_port
from scripts.whatsapp_customer import PHONE_NUMBER_ID
from tests.channels.conftest import ACCESS_TOKEN, whatsapp_webhook

SANNE = "31612345678"
TEXT = {"type": "text", "text": {"preview_url": False, "body": "Uw pakket is onderweg."}}


@contextlib.asynccontextmanager
async def graph_client(base_url: str, **kwargs):
    """A client with a short backoff (0.01 s), so any longer gap is Retry-After's doing."""
    session = aiohttp.ClientSession()
    try:
        yield GraphClient(base_url, PHONE_NUMBER_ID, ACCESS_TOKEN, session=lambda: session,
                          **{"retry_seconds": 0.01, **kwargs})
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_5xx_is_tried_again_until_it_goes_through(graph):
    graph.fail_next(status=503, code=2, message="Service temporarily unavailable")
    graph.fail_next(status=500, code=1, message="An unknown error occurred")
    async with graph_client(graph.url) as client:
        assert await client.send(SANNE, TEXT) is None
    sent = graph.messages(SANNE)
    assert len(sent) == 3 and all(body == sent[0] for body in sent), "the same message, three times"
    assert sent[0]["text"]["body"] == "Uw pakket is onderweg."


@pytest.mark.asyncio
async def test_429_waits_as_long_as_retry_after_asks(graph):
    graph.fail_next(status=429, code=130429, message="Rate limit hit", retry_after="1")
    async with graph_client(graph.url) as client:
        assert await client.send(SANNE, TEXT) is None
    first, second = [r for r in graph.requests if r.method == "POST"]
    assert second.received_at - first.received_at >= 0.95


@pytest.mark.asyncio
async def test_retry_after_as_an_http_date_is_honoured_too(graph):
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s
    graph.fail_next(status=503, code=2, message="Service temporarily unavailable", retry_after=in_two_seconds)
    async with graph_client(graph.url) as client:
        assert await client.send(SANNE, TEXT) is None
    first, second = [r for r in graph.requests if r.method == "POST"]
    assert second.received_at - first.received_at >= 0.9


@pytest.mark.asyncio
async def test_attempts_are_bounded(graph, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        graph.fail_next(status=503, code=2, message="Service temporarily unavailable")
    async with graph_client(graph.url, max_attempts=3) as client:
        assert await client.send(SANNE, TEXT) == 2
        assert len(graph.messages(SANNE)) == 3
        assert "HTTP 503" in caplog.text and "after 3 attempts" in caplog.text
        assert ACCESS_TOKEN not in caplog.text and SANNE not in caplog.text
        assert await client.send(SANNE, TEXT) is None  # the next message is sent as usual
    assert len(graph.messages(SANNE)) == 4


@pytest.mark.parametrize("status, code", [(400, 100), (400, 131047), (401, 190), (403, 200), (404, 100)])
@pytest.mark.asyncio
async def test_other_4xx_answers_are_final_at_once(graph, status, code):
    graph.fail_next(status=status, code=code, message="refused", retry_after="0")
    async with graph_client(graph.url) as client:
        assert await client.send(SANNE, TEXT) == code
    assert len(graph.messages(SANNE)) == 1


@pytest.mark.asyncio
async def test_a_retry_after_longer_than_the_limit_is_not_waited_for(graph, caplog):
    caplog.set_level(logging.WARNING)
    graph.fail_next(status=429, code=130429, message="Rate limit hit", retry_after="120")
    started = time.monotonic()
    async with graph_client(graph.url, max_wait_seconds=10) as client:
        assert await client.send(SANNE, TEXT) == 130429
    assert time.monotonic() - started < 5
    assert len(graph.messages(SANNE)) == 1
    assert "not retried" in caplog.text


@pytest.mark.asyncio
async def test_an_unreachable_graph_api_is_one_logged_failure(caplog):
    caplog.set_level(logging.ERROR)
    async with graph_client(f"http://127.0.0.1:{free_port()}/v19.0") as client:
        assert await client.send(SANNE, TEXT) == 0
    assert "could not reach the Graph API" in caplog.text


def test_retry_after_and_which_statuses_are_retried():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = time.time()
    assert 29 <= retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now=now) <= 30
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert [s for s in (200, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504) if is_retryable(s)] == [
        429, 500, 502, 503, 504]


@pytest.mark.asyncio
async def test_the_channel_retries_with_its_credentials_settings(redis_url, graph, store):
    async with whatsapp_webhook(redis_url, graph.url, graph_max_attempts="2", graph_retry_seconds="0.01") as webhook:
        assert webhook.channel.settings.graph_max_attempts == 2
        store.set(f"whatsapp:window:{SANNE}", int(time.time() - 60))
        output = webhook.channel.get_output_channel()
        graph.fail_next(status=502, code=1, message="Bad gateway")
        await output.send_text_message(SANNE, "Uw pakket is onderweg.")
        assert graph.texts(SANNE) == ["Uw pakket is onderweg."] * 2, "refused once, then sent"
        graph.clear()
        graph.fail_next(status=503, code=2, message="down")
        graph.fail_next(status=503, code=2, message="down")
        await output.send_text_message(SANNE, "Uw pakket is onderweg.")
        assert len(graph.messages(SANNE)) == 2, "two attempts in all, no template"
