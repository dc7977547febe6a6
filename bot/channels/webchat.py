"""The website chat widget's channel: Rasa's socket.io channel, with whole messages out.

Configured in credentials.yml (in place of the built-in ``socketio:`` section)::

    bot.channels.webchat.WebChatInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      metadata_key: customData

What it changes compared with ``rasa.core.channels.socketio``:

- **Whole messages out.** The built-in output splits texts at blank lines and drops the message's
  metadata, so the widget could not tell an agent's message (``agent_id``/``agent_name``) or an
  ``agent_joined`` notice from the bot's. :class:`WebChatOutput` emits one ``bot_uttered`` per
  message: ``{"text", "buttons": [{"title", "payload"}], "quick_replies": (same, for stock
  clients), "image", "attachment", "custom", "elements", "metadata": {...}}``. Metadata is limited
  to :data:`PUBLIC_METADATA`: it goes to a browser, and actions may keep internal notes there.
- **The session id is the customer's secret.** With ``session_persistence`` the session id is the
  Rasa conversation id, and whoever knows it can join its room. Ids must be at least 32 hex
  characters (the widget makes them with ``crypto.randomUUID``/``getRandomValues``); anything
  else gets a fresh random id in ``session_confirm``. A socket may only write to the session it
  joined, so a web client cannot put messages into another channel's conversation (a WhatsApp
  phone number, a REST sender) or another customer's.
- **Replicas.** With ``redis_host`` set the socket.io rooms are shared over Redis pub/sub
  (``share_rooms``, default true): a message for a customer reaches them whichever Rasa replica
  it is sent from (an agent's line comes in over the API of any replica).
- ``enter_room`` is awaited when it is a coroutine (python-socketio >= 5.9), so the channel works
  with the pinned 5.8.0 and with newer releases.
- Message metadata is read from ``metadata_key`` (``customData``, what the widget and
  ``scripts/clients.py`` send) and also from ``metadata``; only a JSON object is accepted.
- **Rate limits.** At most ``rate_limit_per_session`` messages (default 20) per session and
  ``rate_limit_per_ip`` (default 60) per client IP per ``rate_limit_window_seconds`` (60) reach
  the assistant (:mod:`bot.channels.rate_limit`; in the assistant's Redis when ``redis_host`` is
  set, else in this process). A message over a limit is logged (hashed) and counted, not handed
  on, and the session gets one ``bot_uttered`` notice per window (``metadata.event``
  ``rate_limited``) in its language: the message's when it is clear, else the page's locale, else
  Dutch. The client IP is Sanic's ``request.remote_addr`` (a proxy's forwarded address, once
  ``SANIC_PROXIES_COUNT``/``SANIC_REAL_IP_HEADER`` is set), else the peer; addresses in
  ``rate_limit_ip_exempt`` (networks; default loopback and the private ranges, where a proxy
  without forwarding configured, a container network or a test client is) have no per-IP limit,
  so customers behind one proxy address are never limited together. Redis down: no limit (fail
  open), logged.

The channel keeps the name ``socketio``: it is the web chat the rest of the system knows by that
name (``latest_input_channel``, the case's ``channel``, the console's "website chat" label, and
``output_channel=latest`` for agent messages, which Rasa resolves by channel name).
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Text, Tuple

import rasa.core.channels.channel
import rasa.shared.exceptions
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.channels.rate_limit import Limit, RateLimiter, hashed, notice_text
from contract import channels, keys
from contract.channels import valid_session_id

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
# Metadata keys a browser may see (agent messages, notices); everything else stays server-side.
PUBLIC_METADATA = ("agent_id", "agent_name", "event", "message_id", "utter_action", "language")
# Keys of BotUttered.message() that are message content, not metadata.
CONTENT_KEYS = ("text", "timestamp", "buttons", "quick_replies", "image", "attachment", "custom", "elements")


# Peers that are not limited per IP: loopback and private networks, where a proxy is when the
# channel does not see the customer's forwarded address (or a test client on this host).
DEFAULT_IP_EXEMPT = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def ip_networks(value: Any) -> Tuple[Any, ...]:
    """``"127.0.0.0/8, ::1"`` (or a list) → ip_network objects; a bare address is a /32 (/128)."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    try:
        return tuple(ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip())
    except ValueError as error:
        raise rasa.shared.exceptions.RasaException(f"web chat channel: rate_limit_ip_exempt: {error}") from error


def ip_in(address: Optional[str], networks: Iterable[Any]) -> bool:
    """True when ``address`` (may be bracketed IPv6) lies in one of ``networks``."""
    try:
        ip = ipaddress.ip_address(str(address or "").strip("[]"))
    except ValueError:
        return False
    return any(ip.version == network.version and ip in network for network in networks)


def client_ip(environ: Dict[str, Any]) -> Optional[str]:
    """The client's address: Sanic's forwarded ``remote_addr`` if configured, else the peer."""
    request = environ.get("sanic.request") if isinstance(environ, dict) else None
    if request is not None:
        try:
            return request.remote_addr or request.ip or None
        except Exception:  # a request without a transport (tests, odd drivers)
            return None
    return (environ or {}).get("REMOTE_ADDR") or None


def session_language(text: Optional[str], metadata: Optional[Dict[str, Any]]) -> str:
    """The session's language as the assistant would pick it for this message: the message's
    when it is clear, else the page's (locale in the metadata), else Dutch."""
    from bot.language import channel_language_hint, decide_language, get_detector

    detection = get_detector().detect(text) if text and not text.startswith("/") else None
    return decide_language(None, detection, channel_language_hint(metadata))


def new_session_id() -> str:
    """A fresh unguessable session id (128 random bits as 32 hex characters)."""
    return uuid.uuid4().hex


def _buttons(buttons: Iterable[Any]) -> List[Dict[str, Any]]:
    cleaned = []
    for button in buttons or ():
        if isinstance(button, dict) and button.get("title") is not None:
            cleaned.append({"title": str(button["title"]), "payload": str(button.get("payload") or button["title"])})
    return cleaned


def public_message(message: Dict[str, Any]) -> Dict[str, Any]:
    """A ``BotUttered.message()`` dict (content and metadata flattened) → what the widget gets."""
    out: Dict[str, Any] = {}
    text = message.get("text")
    if isinstance(text, str) and text.strip():
        out["text"] = text
    buttons = _buttons(message.get("buttons") or message.get("quick_replies") or [])
    if buttons:
        out["buttons"] = buttons
        out["quick_replies"] = [{"content_type": "text", **b} for b in buttons]
    for key in ("image", "attachment", "custom", "elements"):
        if message.get(key):
            out[key] = message[key]
    nested = message.get("metadata")
    if not isinstance(nested, dict):
        nested = {}
    metadata = {}
    for key in PUBLIC_METADATA:
        value = message.get(key, nested.get(key))
        if value is not None:
            metadata[key] = value
    out["metadata"] = metadata
    return out


class WebChatOutput(SocketIOOutput):
    """Sends each bot message whole, with its public metadata, as one ``bot_uttered`` event."""

    @classmethod
    def name(cls) -> Text:
        return channels.WEB

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """One event per message (Rasa's default dispatch would split it by content type)."""
        body = public_message(dict(message))
        if set(body) - {"metadata"} or body["metadata"].get("event"):
            await self._send_message(recipient_id, body)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text, "buttons": buttons})

    async def send_quick_replies(
        self, recipient_id: Text, text: Text, quick_replies: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text, "buttons": quick_replies})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "image": image})

    async def send_attachment(
        self, recipient_id: Text, attachment: Any, **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {**kwargs, "attachment": attachment})

    async def send_elements(self, recipient_id: Text, elements: Iterable[Dict[Text, Any]], **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "elements": list(elements)})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "custom": json_message})


class WebChatInput(SocketIOInput):
    """Rasa's socket.io input with checked session ids and :class:`WebChatOutput`."""

    @classmethod
    def name(cls) -> Text:
        return channels.WEB

    # A dropped connection without a TCP reset (Wi-Fi gone, phone asleep) is noticed by both sides
    # after ping_interval + ping_timeout; python-socketio's default is 25 + 20 s.
    ping_interval: float = 15.0
    ping_timeout: float = 10.0

    # Rate limits; from_credentials reads them (configure_rate_limits), these are the defaults.
    rate_limiter: RateLimiter = None  # type: ignore[assignment]
    ip_exempt: Tuple[Any, ...] = ip_networks(DEFAULT_IP_EXEMPT)
    _redis: Any = None
    _redis_settings: Optional[Dict[str, Any]] = None
    share_rooms = True

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        channel = cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            credentials.get("session_persistence", True),
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "customData"),
        )
        channel.ping_interval = float(credentials.get("ping_interval", cls.ping_interval))
        channel.ping_timeout = float(credentials.get("ping_timeout", cls.ping_timeout))
        channel.configure_rate_limits(credentials)
        channel.share_rooms = str(credentials.get("share_rooms", True)).strip().lower() not in ("false", "0", "no", "")
        return channel

    def configure_rate_limits(self, credentials: Optional[Dict[Text, Any]] = None) -> None:
        """Reads the rate limits and the Redis to keep them in (see the module docstring)."""
        credentials = credentials or {}

        def number(name: str, default: float) -> float:
            value = credentials.get(name)
            if value in (None, ""):
                return default
            try:
                return float(value)
            except (TypeError, ValueError) as error:
                raise rasa.shared.exceptions.RasaException(f"web chat channel: {name}: {error}") from error

        window = number("rate_limit_window_seconds", 60.0)
        if window <= 0:
            raise rasa.shared.exceptions.RasaException("web chat channel: rate_limit_window_seconds must be positive")
        self.ip_exempt = ip_networks(credentials.get("rate_limit_ip_exempt", DEFAULT_IP_EXEMPT))
        host = str(credentials.get("redis_host") or "").strip()
        self._redis_settings = None
        if host:
            self._redis_settings = {
                "host": host, "port": int(number("redis_port", 6379)), "db": int(number("redis_db", 0)),
                "password": str(credentials.get("redis_password") or "") or None,
            }
        self.rate_limiter = RateLimiter(
            keys.WEBCHAT_PREFIX,
            [Limit("session", int(number("rate_limit_per_session", 20)), window),
             Limit("ip", int(number("rate_limit_per_ip", 60)), window)],
            redis=self._redis_client if self._redis_settings else None,
        )

    def _client_manager(self) -> Dict[str, Any]:
        """With the assistant's Redis: socket.io rooms shared by every Rasa replica.

        A customer's socket lives on one replica, but the message for it (an agent's line, the
        hand-back, the honest wait of a late case) reaches Rasa's API on any of them; emitted
        to the session's room, it goes over Redis pub/sub to the replica that holds the socket
        (bot/channels/shared_rooms.py).
        """
        if not self._redis_settings or not self.share_rooms:
            return {}
        from urllib.parse import quote

        from bot.channels.shared_rooms import SharedRooms

        settings = self._redis_settings
        password = f":{quote(settings['password'], safe='')}@" if settings.get("password") else ""
        url = f"redis://{password}{settings['host']}:{settings['port']}/{settings['db']}"
        return {"client_manager": SharedRooms(url, channel=keys.socketio_rooms(settings["db"]),
                                              redis_options={"socket_connect_timeout": 5})}

    def _redis_client(self) -> Any:
        if self._redis is None:
            from redis.asyncio import Redis

            assert self._redis_settings is not None
            self._redis = Redis(**self._redis_settings, decode_responses=True, socket_timeout=5,
                                socket_connect_timeout=5)
        return self._redis

    async def _close_redis(self) -> None:
        if self._redis is not None:
            await self._redis.close()
            self._redis = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        """The output for ``output_channel=latest`` (agent messages, hand-back)."""
        if self.sio is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt)

    def _metadata(self, data: Dict[str, Any]) -> Dict[str, Any]:
        for key in (self.metadata_key, "metadata"):
            value = data.get(key) if key else None
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            if isinstance(value, dict):
                return value
        return {}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The socket.io server at ``socketio_path`` and a health route."""
        # CORS is left to Sanic (rasa run --cors); socket.io's own origin check is off, as in Rasa.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[], ping_interval=self.ping_interval,
                          ping_timeout=self.ping_timeout, **self._client_manager())
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)
        self.sio = sio
        namespace = self.namespace

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        if self.rate_limiter is None:
            self.configure_rate_limits()

        @socketio_webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self._close_redis()

        @sio.on("connect", namespace=namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            if self.jwt_key:
                token = auth.get("token") if isinstance(auth, dict) else None
                payload = (rasa.core.channels.channel.decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)
                           if token else None)
                if not payload:
                    return False
            await sio.save_session(sid, {"ip": client_ip(environ)}, namespace=namespace)
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: Text) -> None:
            logger.debug("web chat socket %s disconnected", sid)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: Text, data: Optional[Dict] = None) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = requested if valid_session_id(requested) else new_session_id()
            if requested and session_id != requested:
                logger.info("web chat: refused a malformed session id; a new one was given")
            previous = await self._session_of(sid)
            if previous and previous != session_id:
                await self._leave(sid, previous)
            if self.session_persistence:
                await self._enter(sid, session_id)
            await self._update_session(sid, session_id=session_id)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: Text, data: Optional[Dict] = None) -> None:
            if not isinstance(data, dict):
                return
            sender_id = await self._session_of(sid)
            sent = data.get("session_id")
            if sender_id is None and self.session_persistence and valid_session_id(sent):
                # A client that skipped session_request (stock Rasa allows it): join now.
                sender_id = sent
                await self._enter(sid, sender_id)
                await self._update_session(sid, session_id=sender_id)
            if sender_id is None:
                if self.session_persistence:
                    logger.warning("web chat: message without a valid session; ignored")
                    return
                sender_id = sid
            if self.session_persistence and sent and sent != sender_id:
                logger.warning("web chat: a socket wrote to a session it did not join; ignored")
                return
            text = data.get("message")
            if not isinstance(text, str) or not text.strip():
                return
            metadata = self._metadata(data)
            if not await self._within_rate_limits(sid, sender_id, text, metadata):
                return
            message = UserMessage(
                text[:MAX_MESSAGE_CHARS],
                WebChatOutput(sio, self.bot_message_evt),
                sender_id,
                input_channel=self.name(),
                metadata=metadata,
            )
            await on_new_message(message)

        return socketio_webhook

    async def _within_rate_limits(self, sid: Text, session_id: str, text: str, metadata: Dict[str, Any]) -> bool:
        """Counts the message; False (and once per window a notice) when it is over a limit."""
        ip = await self._session_value(sid, "ip")
        verdict = await self.rate_limiter.check(
            {"session": session_id, "ip": None if not ip or ip_in(ip, self.ip_exempt) else ip}, notify=session_id)
        if verdict.allowed:
            return True
        assert verdict.limit is not None
        logger.warning(
            "web chat: %s %s sent %d messages within %.0f s (limit %d); not handed to the assistant%s",
            verdict.limit.scope, hashed(ip if verdict.limit.scope == "ip" else session_id), verdict.count,
            verdict.limit.window_seconds, verdict.limit.max_messages, ", the customer is told" if verdict.notify else "")
        if verdict.notify:
            language = session_language(text, metadata)
            assert self.sio is not None
            await WebChatOutput(self.sio, self.bot_message_evt).send_response(
                session_id, {"text": notice_text(language), "event": "rate_limited", "language": language})
        return False

    async def _session_value(self, sid: Text, key: str) -> Any:
        assert self.sio is not None
        try:
            session = await self.sio.get_session(sid, namespace=self.namespace)
        except KeyError:
            return None
        return (session or {}).get(key)

    async def _update_session(self, sid: Text, **values: Any) -> None:
        assert self.sio is not None
        try:
            session = dict(await self.sio.get_session(sid, namespace=self.namespace) or {})
        except KeyError:
            session = {}
        session.update(values)
        await self.sio.save_session(sid, session, namespace=self.namespace)

    async def _session_of(self, sid: Text) -> Optional[str]:
        return await self._session_value(sid, "session_id")

    async def _enter(self, sid: Text, room: Text) -> None:
        assert self.sio is not None
        result = self.sio.enter_room(sid, room, namespace=self.namespace)
        if inspect.isawaitable(result):
            await result

    async def _leave(self, sid: Text, room: Text) -> None:
        assert self.sio is not None
        result = self.sio.leave_room(sid, room, namespace=self.namespace)
        if inspect.isawaitable(result):
            await result
