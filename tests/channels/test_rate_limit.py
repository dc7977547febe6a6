"""Rate limits on the public customer channels (bot/channels/rate_limit.py).

- The limiter itself: in memory (a fake clock) and in the private test Redis, and Redis down.
- WhatsApp: on Rasa's real Sanic app with the fake Graph API, as the other channel tests.
- Web widget: the socket.io channel on Rasa's real Sanic app, with python-socketio's client
  (polling, as scripts/clients.py); client IPs through Sanic's ``REAL_IP_HEADER`` (what a proxy sets).

In each: under the limit every message reaches the assistant; over it the extra ones do not, and
the sender gets exactly one notice per window in their language (Dutch with "u", English); the
window resets; two senders do not affect each other; Redis down lets everything through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Dict, List, Optional

import pytest
import pytest_asyncio

from bot.channels.rate_limit import NOTICES, Limit, RateLimiter, hashed
from scripts.stack import free_port, parse_redis_url
from scripts.whatsapp_customer import delivery, message
from tests.channels.conftest import serving, whatsapp_webhook

SANNE = "31612345678"  # Dutch number
JAMES = "447700900123"  # British number
NL, EN = NOTICES["nl"], NOTICES["en"]


def test_the_notices_are_polite_and_dutch_uses_u():
    assert " u " in f" {NL} " and " uw " in NL and not any(w in NL.split() for w in ("je", "jij", "jouw"))
    assert "volgende bericht" in NL and "next message" in EN


# -- the limiter -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_memory_limiter_fixed_window_one_notice_reset_and_independent_senders():
    clock = Clock()
    limiter = RateLimiter("test", [Limit("sender", 3, 60)], clock=clock)
    verdicts = [await limiter.check({"sender": "a"}, notify="a") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.notify for v in verdicts] == [False, False, False, True, False, False]
    assert verdicts[3].count == 4 and verdicts[3].limit.scope == "sender"
    assert (await limiter.check({"sender": "b"}, notify="b")).allowed, "another sender is not affected"
    clock.now += 59.9
    assert not (await limiter.check({"sender": "a"}, notify="a")).allowed
    clock.now += 0.2  # the window is over
    again = [await limiter.check({"sender": "a"}, notify="a") for _ in range(5)]
    assert [v.allowed for v in again] == [True, True, True, False, False]
    assert [v.notify for v in again] == [False, False, False, True, False], "one notice in the new window"
    assert limiter.stats["limited"] == 6 and limiter.stats["notices"] == 2 and limiter.stats["allowed"] == 7


@pytest.mark.asyncio
async def test_memory_limiter_a_session_refused_by_its_own_limit_does_not_use_up_its_ip():
    limiter = RateLimiter("test", [Limit("session", 2, 60), Limit("ip", 4, 60)], clock=Clock())
    flood = [await limiter.check({"session": "s1", "ip": "203.0.113.7"}, notify="s1") for _ in range(10)]
    assert sum(v.allowed for v in flood) == 2
    # The IP counted only s1's two accepted messages: two more sessions behind it get 2 in total.
    others = [await limiter.check({"session": s, "ip": "203.0.113.7"}, notify=s) for s in ("s2", "s2", "s3", "s3")]
    assert [v.allowed for v in others] == [True, True, False, False]
    assert others[2].limit.scope == "ip" and [v.notify for v in others] == [False, False, True, False]
    assert (await limiter.check({"session": "s4", "ip": "198.51.100.9"}, notify="s4")).allowed
    assert (await limiter.check({"session": "s5", "ip": None}, notify="s5")).allowed, "no IP: per session only"


@pytest.mark.asyncio
async def test_a_limit_of_zero_is_off():
    limiter = RateLimiter("test", [Limit("sender", 0, 60)])
    assert all([(await limiter.check({"sender": "a"}, notify="a")).allowed for _ in range(100)])


def _redis_client(url: str, **overrides: Any):
    from redis.asyncio import Redis

    env = parse_redis_url(url)
    settings = dict(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]), db=int(env["REDIS_DB"]),
                    password=env["REDIS_PASSWORD"] or None, decode_responses=True, socket_connect_timeout=2)
    settings.update(overrides)
    return Redis(**settings)


@pytest.mark.asyncio
async def test_redis_limiter_is_atomic_hashed_expiring_and_shared_between_replicas(redis_url, store):
    client = _redis_client(redis_url)
    try:
        limit = Limit("sender", 5, 30)
        replicas = [RateLimiter("test", [limit], redis=lambda: client) for _ in range(2)]
        verdicts = await asyncio.gather(*(replicas[n % 2].check({"sender": SANNE}, notify=SANNE) for n in range(12)))
        assert sum(v.allowed for v in verdicts) == 5
        assert sum(v.notify for v in verdicts) == 1, "one notice, also with two replicas at once"
        assert (await replicas[0].check({"sender": JAMES}, notify=JAMES)).allowed
        keys = store.keys("test:*")
        assert SANNE not in " ".join(keys) and JAMES not in " ".join(keys), "only hashes of the sender"
        counter = f"test:ratelimit:sender:{hashed(SANNE)}"
        assert store.get(counter) == "12" and 0 < store.pttl(counter) <= 30_000
        assert 0 < store.pttl(f"test:ratelimit:notice:{hashed(SANNE)}") <= 30_000
        assert store.hget("test:ratelimit:stats", "sender") == "7"
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_redis_limiter_window_resets(redis_url, store):
    client = _redis_client(redis_url)
    try:
        limiter = RateLimiter("test", [Limit("sender", 1, 0.3)], redis=lambda: client)
        first = [await limiter.check({"sender": SANNE}, notify=SANNE) for _ in range(3)]
        assert [(v.allowed, v.notify) for v in first] == [(True, False), (False, True), (False, False)]
        assert 0 < first[1].seconds_left <= 0.3
        await asyncio.sleep(max(store.pttl(f"test:ratelimit:sender:{hashed(SANNE)}"), 0) / 1000 + 0.05)
        second = [await limiter.check({"sender": SANNE}, notify=SANNE) for _ in range(3)]
        assert [(v.allowed, v.notify) for v in second] == [(True, False), (False, True), (False, False)]
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_redis_down_fails_open_and_is_logged_and_counted(caplog):
    client = _redis_client(f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.WARNING)
    try:
        limiter = RateLimiter("test", [Limit("sender", 1, 60)], redis=lambda: client)
        verdicts = [await limiter.check({"sender": SANNE}, notify=SANNE) for _ in range(5)]
        assert all(v.allowed and v.unchecked for v in verdicts)
        assert limiter.stats["unchecked"] == 5
        assert "rate limit unavailable" in caplog.text and SANNE not in caplog.text
    finally:
        await client.close()


# -- WhatsApp ----------------------------------------------------------------------------------
def texts_from(wa_id: str, texts: List[str]) -> dict:
    return delivery([message(wa_id, text=t) for t in texts], contacts=[{"profile": {"name": "Klant"}, "wa_id": wa_id}])


async def send_each(webhook, wa_id: str, texts: List[str]) -> None:
    """One delivery per message, as Meta sends a customer's messages; each answered 200."""
    for text in texts:
        status_code, _ = await webhook.post(texts_from(wa_id, [text]))
        assert status_code == 200, "Meta gets its 200 also over the limit"


def received_from(webhook, wa_id: str) -> List[str]:
    return [m.text for m in webhook.received if m.sender_id == wa_id]


@pytest.mark.asyncio
async def test_whatsapp_under_the_limit_every_message_reaches_the_assistant(webhook, graph):
    texts = [f"bericht {n} over mijn bestelling" for n in range(20)]
    await send_each(webhook, SANNE, texts)
    assert received_from(webhook, SANNE) == texts
    assert graph.messages(SANNE) == [], "no notice under the limit"


@pytest.mark.parametrize("wa_id, language, notice", [(SANNE, "nl", NL), (JAMES, "en", EN)], ids=["nl", "en"])
@pytest.mark.asyncio
async def test_whatsapp_over_the_limit_one_notice_in_the_customers_language(webhook, graph, store, caplog,
                                                                             wa_id, language, notice):
    caplog.set_level(logging.INFO)
    words = "waar is mijn pakket" if language == "nl" else "where is my parcel"
    texts = [f"{words} {n}" for n in range(25)]
    await send_each(webhook, wa_id, texts[:12])
    await webhook.post(texts_from(wa_id, texts[12:]))  # the rest in one delivery
    assert received_from(webhook, wa_id) == texts[:20]
    assert graph.texts(wa_id) == [notice], "exactly one notice, in the customer's language"
    assert webhook.channel.rate_limiter.stats["limited"] == 5
    assert store.hget("whatsapp:ratelimit:stats", "sender") == "5"
    logged = "\n".join(r.getMessage() for r in caplog.records if "limit" in r.getMessage())
    assert logged.count("not handed to the assistant") == 5
    assert wa_id not in caplog.text and wa_id[-3:] in logged, "masked: country code and the last digits"


@pytest.mark.asyncio
async def test_whatsapp_notice_follows_the_conversations_language_before_the_phone_number(webhook, graph, store):
    await webhook.agent.set_language(SANNE, "en")  # the assistant has been answering Sanne in English
    await send_each(webhook, SANNE, ["hello"] * 21)
    assert graph.texts(SANNE) == [EN]


@pytest.mark.asyncio
async def test_whatsapp_notice_for_a_new_customer_follows_a_clear_message_over_the_number(webhook, graph):
    await send_each(webhook, SANNE, [f"could you please tell me where my order is {n}" for n in range(21)])
    assert graph.texts(SANNE) == [EN]


@pytest.mark.asyncio
async def test_whatsapp_window_resets_and_senders_are_independent(redis_url, graph, store):
    async with whatsapp_webhook(redis_url, graph.url, rate_limit_per_sender=3,
                                rate_limit_window_seconds=1) as webhook:
        await webhook.post(texts_from(SANNE, [f"vraag {n}" for n in range(5)]))
        await webhook.post(texts_from(JAMES, ["question 1", "question 2", "question 3"]))
        assert received_from(webhook, SANNE) == ["vraag 0", "vraag 1", "vraag 2"]
        assert received_from(webhook, JAMES) == ["question 1", "question 2", "question 3"]
        assert graph.texts(SANNE) == [NL] and graph.texts(JAMES) == []

        await asyncio.sleep(max(store.pttl(f"whatsapp:ratelimit:sender:{hashed(SANNE)}"), 0) / 1000 + 0.05)
        graph.clear()
        await webhook.post(texts_from(SANNE, ["nieuwe vraag 1", "nieuwe vraag 2", "nieuwe vraag 3", "x", "y"]))
        assert received_from(webhook, SANNE)[3:] == ["nieuwe vraag 1", "nieuwe vraag 2", "nieuwe vraag 3"]
        assert graph.texts(SANNE) == [NL], "a new window, one new notice"


@pytest.mark.asyncio
async def test_whatsapp_redis_down_fails_open(redis_url, graph, caplog):
    caplog.set_level(logging.WARNING)
    async with whatsapp_webhook(redis_url, graph.url, redis_port=free_port(), rate_limit_per_sender=2) as webhook:
        texts = [f"bericht {n}" for n in range(6)]
        await send_each(webhook, SANNE, texts)
        assert received_from(webhook, SANNE) == texts
    assert "rate limit unavailable" in caplog.text and SANNE not in caplog.text


@pytest.mark.asyncio
async def test_whatsapp_redeliveries_and_reactions_do_not_count(redis_url, graph, store):
    async with whatsapp_webhook(redis_url, graph.url, rate_limit_per_sender=2) as webhook:
        payload = texts_from(SANNE, ["hallo"])
        for _ in range(5):
            await webhook.post(payload)  # Meta retrying one message
        await webhook.post(delivery([message(SANNE, "reaction", reaction={"message_id": "wamid.x", "emoji": "👍"})]))
        await webhook.post(texts_from(SANNE, ["waar is mijn pakket"]))
        assert received_from(webhook, SANNE) == ["hallo", "waar is mijn pakket"]
        assert graph.texts(SANNE) == []


def test_credentials_yml_configures_both_channels_rate_limits(stack_channels):
    from bot.channels.webchat import WebChatInput
    from bot.channels.whatsapp import WhatsAppInput, WhatsAppSettings

    env, channels = stack_channels
    [whatsapp] = [c for c in channels if isinstance(c, WhatsAppInput)]
    [webchat] = [c for c in channels if isinstance(c, WebChatInput)]
    assert (whatsapp.settings.rate_limit_per_sender, whatsapp.settings.rate_limit_window_seconds) == (20, 60)
    assert {scope: (limit.max_messages, limit.window_seconds) for scope, limit in webchat.rate_limiter.limits.items()} == {
        "session": (20, 60), "ip": (60, 60)}
    assert webchat.rate_limiter.uses_redis and webchat._redis_settings["port"] == int(env["REDIS_PORT"])
    from bot.channels.webchat import ip_in

    assert all(ip_in(ip, webchat.ip_exempt) for ip in ("127.0.0.1", "::1", "[::1]", "10.1.2.3", "172.17.0.2"))
    assert not any(ip_in(ip, webchat.ip_exempt) for ip in ("203.0.113.7", "2001:db8::1", "", None, "unix"))
    # Defaults when a section leaves them out.
    defaults = WhatsAppSettings.from_credentials({"verify_token": "v", "app_secret": "s", "access_token": "a",
                                                  "phone_number_id": "1"})
    assert (defaults.rate_limit_per_sender, defaults.rate_limit_window_seconds) == (20, 60)
    bare = WebChatInput.from_credentials({})
    assert not bare.rate_limiter.uses_redis, "no Redis configured: in-process"
    assert {scope: limit.max_messages for scope, limit in bare.rate_limiter.limits.items()} == {"session": 20, "ip": 60}


# -- the web widget's socket.io channel ----------------------------------------------------------
class Browser:
    """One widget: a socket.io client with its own session id (and client IP, via X-Real-IP)."""

    def __init__(self, url: str, ip: Optional[str], locale: str = "nl-NL") -> None:
        import socketio

        self.url, self.ip, self.locale = url, ip, locale
        self.session_id = __import__("uuid").uuid4().hex
        self.received: List[Dict[str, Any]] = []
        self.client = socketio.AsyncClient(reconnection=False)
        self.client.on("bot_uttered", self.received.append)
        self._confirmed = asyncio.Event()
        self.client.on("session_confirm", lambda *_: self._confirmed.set())

    async def open(self) -> Browser:
        headers = {"X-Real-IP": self.ip} if self.ip else {}
        await self.client.connect(self.url, socketio_path="/socket.io", transports=["polling"], headers=headers,
                                  wait_timeout=10)
        await self.client.emit("session_request", {"session_id": self.session_id})
        await asyncio.wait_for(self._confirmed.wait(), 10)
        return self

    async def say(self, *texts: str) -> None:
        for text in texts:  # acknowledged once the channel has handled it
            await self.client.call("user_uttered", {"message": text, "session_id": self.session_id,
                                                    "customData": {"locale": self.locale}}, timeout=10)

    async def notices(self, expected: int) -> List[str]:
        """The notices received, after waiting for ``expected`` of them and a moment for more."""
        deadline = time.monotonic() + 5
        while len(self.received) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert all(m.get("metadata", {}).get("event") == "rate_limited" for m in self.received)
        return [m["text"] for m in self.received]

    async def close(self) -> None:
        await self.client.disconnect()


class WebChat:
    def __init__(self, url: str, agent: Any, channel: Any) -> None:
        self.url, self.agent, self.channel = url, agent, channel
        self.browsers: List[Browser] = []

    async def browser(self, ip: Optional[str] = "203.0.113.7", locale: str = "nl-NL") -> Browser:
        browser = await Browser(self.url, ip, locale).open()
        self.browsers.append(browser)
        return browser

    def received_from(self, browser: Browser) -> List[str]:
        return [m.text for m in self.agent.messages if m.sender_id == browser.session_id]


@contextlib.asynccontextmanager
async def webchat(redis_url: Optional[str], **settings: Any):
    from bot.channels.webchat import WebChatInput

    credentials: Dict[str, Any] = {"session_persistence": True, "metadata_key": "customData"}
    if redis_url:
        env = parse_redis_url(redis_url)
        credentials.update(redis_host=env["REDIS_HOST"], redis_port=env["REDIS_PORT"], redis_db=env["REDIS_DB"],
                           redis_password=env["REDIS_PASSWORD"])
    credentials.update(settings)
    channel = WebChatInput.from_credentials(credentials)

    def trust_the_proxy_header(app: Any) -> None:
        app.config.REAL_IP_HEADER = "x-real-ip"

    async with serving(channel, trust_the_proxy_header) as (url, agent):
        chat = WebChat(url, agent, channel)
        try:
            yield chat
        finally:
            for browser in chat.browsers:
                await browser.close()


@pytest_asyncio.fixture
async def web(redis_url, store):
    async with webchat(redis_url, rate_limit_per_session=5, rate_limit_per_ip=8) as chat:
        yield chat


@pytest.mark.asyncio
async def test_webchat_under_the_limit_every_message_reaches_the_assistant(web):
    browser = await web.browser()
    texts = [f"waar blijft mijn bestelling {n}" for n in range(5)]
    await browser.say(*texts)
    assert web.received_from(browser) == texts
    assert await browser.notices(0) == []


@pytest.mark.parametrize("locale, words, notice", [
    ("nl-NL", "waar blijft mijn bestelling", NL),
    ("en-GB", "where is my order", EN),
    ("nl-NL", "could you please tell me where my order is", EN),  # the customer's language, not the page's
], ids=["nl", "en", "en-on-a-dutch-page"])
@pytest.mark.asyncio
async def test_webchat_over_the_session_limit_one_notice_in_the_sessions_language(web, store, locale, words, notice):
    browser = await web.browser(locale=locale)
    texts = [f"{words} {n}" for n in range(9)]
    await browser.say(*texts)
    assert web.received_from(browser) == texts[:5]
    assert await browser.notices(1) == [notice]
    assert web.channel.rate_limiter.stats["limited"] == 4
    assert store.hget("webchat:ratelimit:stats", "session") == "4"
    assert browser.session_id not in " ".join(store.keys("*")), "the session id is a secret: hashed"


@pytest.mark.asyncio
async def test_webchat_two_sessions_do_not_affect_each_other(web):
    flooding, calm = await web.browser(ip="203.0.113.7"), await web.browser(ip="198.51.100.9")
    await flooding.say(*[f"hallo {n}" for n in range(7)])
    await calm.say("mijn internet doet het niet", "sinds gisteren")
    assert len(web.received_from(flooding)) == 5
    assert web.received_from(calm) == ["mijn internet doet het niet", "sinds gisteren"]
    assert await flooding.notices(1) == [NL] and await calm.notices(0) == []


@pytest.mark.asyncio
async def test_webchat_per_ip_limit_across_sessions_and_not_for_another_ip(web):
    first, second = await web.browser(ip="203.0.113.7"), await web.browser(ip="203.0.113.7", locale="en-GB")
    elsewhere = await web.browser(ip="198.51.100.9")
    await first.say(*[f"vraag {n}" for n in range(5)])
    await second.say(*[f"question {n}" for n in range(5)])  # the IP's 6th to 10th: 3 pass (limit 8)
    await elsewhere.say(*[f"vraag {n}" for n in range(5)])
    assert len(web.received_from(first)) == 5
    assert web.received_from(second) == ["question 0", "question 1", "question 2"]
    assert len(web.received_from(elsewhere)) == 5
    assert await second.notices(1) == [EN] and await first.notices(0) == [] and await elsewhere.notices(0) == []


@pytest.mark.asyncio
async def test_webchat_loopback_peers_are_not_limited_together(web):
    # A proxy on this host (or in the container network) without forwarding configured: every
    # customer has its address.
    browsers = [await web.browser(ip=None), await web.browser(ip=None), await web.browser(ip="172.18.0.5")]
    for browser in browsers:
        await browser.say(*[f"vraag {n}" for n in range(5)])  # 15 from 127.0.0.1, IP limit 8
    assert all(len(web.received_from(b)) == 5 for b in browsers)


@pytest.mark.asyncio
async def test_webchat_window_resets(redis_url, store):
    async with webchat(redis_url, rate_limit_per_session=2, rate_limit_window_seconds=1) as chat:
        browser = await chat.browser()
        await browser.say("een", "twee", "drie", "vier")
        assert chat.received_from(browser) == ["een", "twee"]
        assert await browser.notices(1) == [NL]
        await asyncio.sleep(max(store.pttl(f"webchat:ratelimit:session:{hashed(browser.session_id)}"), 0) / 1000
                            + 0.05)
        await browser.say("vijf", "zes", "zeven")
        assert chat.received_from(browser) == ["een", "twee", "vijf", "zes"]
        assert await browser.notices(2) == [NL, NL], "one notice per window"


@pytest.mark.asyncio
async def test_webchat_without_redis_limits_in_the_process(store):
    async with webchat(None, rate_limit_per_session=3) as chat:
        assert not chat.channel.rate_limiter.uses_redis
        one, two = await chat.browser(locale="en-GB"), await chat.browser()
        await one.say(*[f"where is my order {n}" for n in range(6)])
        await two.say("hallo", "is er een storing")
        assert len(chat.received_from(one)) == 3 and chat.received_from(two) == ["hallo", "is er een storing"]
        assert await one.notices(1) == [EN] and await two.notices(0) == []
    assert store.keys("*") == []


@pytest.mark.asyncio
async def test_webchat_redis_down_fails_open(redis_url, caplog):
    caplog.set_level(logging.WARNING)
    async with webchat(redis_url, redis_port=free_port(), rate_limit_per_session=2) as chat:
        browser = await chat.browser()
        texts = [f"bericht {n}" for n in range(5)]
        await browser.say(*texts)
        assert chat.received_from(browser) == texts
        assert await browser.notices(0) == []
    assert "rate limit unavailable" in caplog.text
