"""The WhatsApp channel: settings, the webhook (:class:`WhatsAppInput`) and the sender
(:class:`WhatsAppOutput`). See the package docstring for what it does."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Text, Tuple, Type

import aiohttp
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException

from bot.channels import whatsapp_state as state
from contract import channels, keys
from contract.slots import LANGUAGES
from contract.whatsapp_window import WINDOW_SECONDS, window_seconds_left
from bot.channels.rate_limit import Limit, RateLimiter, notice_text
from bot.channels.whatsapp.formatting import (
    MAX_INTERACTIVE_BODY_CHARS,
    MAX_REPLY_BUTTONS,
    MAX_TEXT_CHARS,
    list_message,
    reply_buttons_message,
    split_tail,
    split_text,
    text_message,
)
from bot.channels.whatsapp.graph import ERROR_OUTSIDE_WINDOW, GraphClient
from bot.channels.whatsapp.payloads import (
    SIGNATURE_HEADER,
    InboundMessage,
    mask_phone,
    parse_delivery,
    signature_is_valid,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME = channels.WHATSAPP
CLASS_PATH = "bot.channels.whatsapp.WhatsAppInput"
DEFAULT_GRAPH_API_URL = "https://graph.facebook.com/v19.0"
SUPPORTED_LANGUAGES = LANGUAGES
# The conversation's language as the assistant keeps it (domain/session.yml, actions/session.py).
LANGUAGE_SLOT = "language"
# Phone-number ids of other numbers reported to the operator; more are not remembered.
MAX_REPORTED_PHONE_NUMBER_IDS = 100


# -- settings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhatsAppSettings:
    """The channel's settings, from its section in credentials.yml."""

    verify_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    phone_number_id: str
    graph_api_url: str = DEFAULT_GRAPH_API_URL
    # Tries per message in all when the Graph API answers 429 or 5xx; the first retry waits
    # graph_retry_seconds (or what Retry-After asks, up to 10 s), each next one twice as long.
    graph_max_attempts: int = 3
    graph_retry_seconds: float = 0.5
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: Optional[str] = field(default=None, repr=False)
    max_message_age_seconds: int = 600
    template_nl: str = "helder_reply_nl"
    template_en: str = "helder_reply_en"
    template_language_nl: str = "nl"
    template_language_en: str = "en"
    # The label of the button that opens a list (WhatsApp requires one, max 20 characters).
    list_button_nl: str = "Kies een optie"
    list_button_en: str = "Choose an option"
    # Messages per sender (wa_id) per window that reach the assistant; 0 switches it off.
    rate_limit_per_sender: int = 20
    rate_limit_window_seconds: float = 60.0

    REQUIRED = ("verify_token", "app_secret", "access_token", "phone_number_id")
    _INTEGERS = ("redis_port", "redis_db", "max_message_age_seconds", "rate_limit_per_sender", "graph_max_attempts")
    _FLOATS = ("rate_limit_window_seconds", "graph_retry_seconds")

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> WhatsAppSettings:
        """Reads and checks the settings; raises :class:`RasaException` naming what is missing."""
        credentials = credentials or {}
        missing = [name for name in cls.REQUIRED if not str(credentials.get(name) or "").strip()]
        if missing:
            raise RasaException(
                f"The WhatsApp channel needs {', '.join(missing)} in credentials.yml "
                f"({CLASS_PATH}), e.g. from the WHATSAPP_* environment variables."
            )
        values: Dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if credentials.get(name) not in (None, ""):
                values[name] = credentials[name]
        try:
            for name in cls._INTEGERS:
                if name in values:
                    values[name] = int(values[name])
            for name in cls._FLOATS:
                if name in values:
                    values[name] = float(values[name])
        except (TypeError, ValueError) as error:
            raise RasaException(f"WhatsApp channel: {error}") from error
        if values.get("rate_limit_window_seconds", 60.0) <= 0:
            raise RasaException("WhatsApp channel: rate_limit_window_seconds must be positive")
        if values.get("graph_max_attempts", 3) < 1 or values.get("graph_retry_seconds", 0.5) < 0:
            raise RasaException("WhatsApp channel: graph_max_attempts must be at least 1 and "
                                "graph_retry_seconds not negative")
        for name in cls.REQUIRED:
            values[name] = str(values[name]).strip()
        values["graph_api_url"] = str(values.get("graph_api_url", DEFAULT_GRAPH_API_URL)).rstrip("/")
        if not values["graph_api_url"].startswith(("https://", "http://")):
            raise RasaException("WhatsApp channel: graph_api_url must be an http(s) URL")
        return cls(**values)

    def template(self, language: str) -> Tuple[str, str]:
        """(template name, template language code) for "nl" or "en"."""
        if language == "en":
            return self.template_en, self.template_language_en
        return self.template_nl, self.template_language_nl

    def list_button(self, language: str) -> str:
        return self.list_button_en if language == "en" else self.list_button_nl


# -- shared clients -------------------------------------------------------------------------
class _Clients:
    """What the input channel and every output channel it makes share: Redis, HTTP and the
    Graph API clients, and the Rasa app (for the conversations' trackers).

    Created on first use inside the server's event loop, closed when the server stops.
    """

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self._http: Optional[aiohttp.ClientSession] = None
        self._app: Any = None
        self.graph = GraphClient(settings.graph_api_url, settings.phone_number_id, settings.access_token,
                                 session=lambda: self.http, max_attempts=settings.graph_max_attempts,
                                 retry_seconds=settings.graph_retry_seconds)

    @property
    def redis(self) -> Any:
        if self._redis is None:
            from redis.asyncio import Redis

            self._redis = Redis(
                host=self.settings.redis_host, port=self.settings.redis_port, db=self.settings.redis_db,
                password=self.settings.redis_password or None, decode_responses=True,
                socket_timeout=5, socket_connect_timeout=5,
            )
        return self._redis

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    def bind(self, app: Any) -> None:
        """The Sanic app Rasa serves the channel on; its ``ctx.agent`` holds the tracker store."""
        self._app = app

    async def language_slot(self, wa_id: str) -> Optional[str]:
        """The ``language`` slot of the customer's conversation, as stored by Rasa; None when
        there is no conversation (yet), no agent, or the tracker store cannot be read.

        During a turn this is the tracker as it was before the turn (Rasa saves it at the end).
        """
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        tracker_store = getattr(agent, "tracker_store", None)
        if tracker_store is None:
            return None
        try:
            tracker = await tracker_store.retrieve(wa_id)
        except Exception as error:  # whatever the configured store raises: the language is unknown
            logger.warning("whatsapp: could not read the conversation of %s (%r); language unknown",
                           mask_phone(wa_id), error)
            return None
        language = tracker.get_slot(LANGUAGE_SLOT) if tracker is not None else None
        return language if language in SUPPORTED_LANGUAGES else None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._redis is not None:
            await self._redis.close()
            self._redis = None


def _redis_errors() -> Tuple[Type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


def _text_detection(text: Optional[str]) -> Any:
    """The language detection of a customer's text, as the NLU pipeline makes it; None for
    button payloads and media ("/..."), which the pipeline does not read either."""
    if not text or text.startswith("/"):
        return None
    from bot.language import get_detector

    return get_detector().detect(text)


def _phone_language(wa_id: str) -> Optional[str]:
    from bot.language import language_from_phone_number

    return language_from_phone_number("+" + wa_id)


# -- output ---------------------------------------------------------------------------------
class WhatsAppOutput(OutputChannel):
    """Sends the assistant's and agents' messages through the WhatsApp Cloud API.

    Args:
        clients: the channel's shared clients.
        turn: the customer message this output answers (None for agent messages that come
            through Rasa's HTTP API); its language decides when the stored conversation predates it.
    """

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(self, clients: _Clients, turn: Optional[InboundMessage] = None) -> None:
        self._clients = clients
        self.settings = clients.settings
        self._turn = turn

    # Rasa's entry points.
    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        if not text or not await self._may_send_free_text(recipient_id):
            return
        for part in split_text(text, MAX_TEXT_CHARS):
            await self._send(recipient_id, text_message(part))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        buttons = [b for b in buttons or [] if isinstance(b, dict) and (b.get("title") or b.get("payload"))]
        if not buttons:
            await self.send_text_message(recipient_id, text, **kwargs)
            return
        if not await self._may_send_free_text(recipient_id):
            return
        head, body = split_tail(text or "", MAX_INTERACTIVE_BODY_CHARS)
        for part in split_text(head, MAX_TEXT_CHARS):
            await self._send(recipient_id, text_message(part))
        body = body or "…"  # WhatsApp requires a body on interactive messages
        if len(buttons) <= MAX_REPLY_BUTTONS:
            message = reply_buttons_message(body, buttons)
        else:
            message = list_message(body, buttons, self.settings.list_button(await self.language(recipient_id)))
        await self._send(recipient_id, message)

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        if await self._may_send_free_text(recipient_id):
            await self._send(recipient_id, {"type": "image", "image": {"link": image}})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """Sends a response's ``custom`` part as a WhatsApp message object.

        For example ``{"type": "location", "location": {...}}``, exactly as in the Cloud API;
        ``to`` and ``messaging_product`` are filled in.
        """
        if not isinstance(json_message, dict) or not json_message.get("type"):
            logger.warning("whatsapp: custom message without a WhatsApp 'type', not sent")
            return
        if await self._may_send_free_text(recipient_id):
            message = {k: v for k, v in json_message.items() if k not in ("to", "messaging_product", "recipient_type")}
            await self._send(recipient_id, message)

    # The customer's language.
    async def language(self, wa_id: str) -> str:
        """The customer's language: the conversation's ``language`` slot in Rasa's tracker;
        while answering a customer message, as the assistant decides it for that message (a
        clear sentence in the other language switches it); else the phone number's country
        (+31/+32 Dutch, +44/+1 English); else Dutch."""
        from bot.language import decide_language

        slot = await self._clients.language_slot(wa_id)
        turn = self._turn if self._turn is not None and self._turn.wa_id == wa_id else None
        detection = _text_detection(turn.text) if turn is not None else None
        return decide_language(slot, detection, _phone_language(wa_id))

    # The 24-hour window and the template.
    async def _may_send_free_text(self, wa_id: str) -> bool:
        """True inside the window; otherwise sends the template (once) and returns False."""
        try:
            left = await window_seconds_left(self._clients.redis, wa_id)
        except _redis_errors() as error:
            # Unknown: try free text; the Graph API answers 131047 if the window is closed,
            # and then the template goes out after all.
            logger.warning("whatsapp: window unknown for %s (%s), trying free text", mask_phone(wa_id), error)
            return True
        if left > 0:
            return True
        await self._send_template(wa_id)
        return False

    async def _send_template(self, wa_id: str) -> None:
        try:
            first = await self._clients.redis.set(keys.whatsapp_template(wa_id), "1", nx=True, ex=WINDOW_SECONDS)
        except _redis_errors():
            first = True
        if not first:
            logger.info("whatsapp: window closed for %s and the template is already out; message not sent",
                        mask_phone(wa_id))
            return
        name, code = self.settings.template(await self.language(wa_id))
        logger.info("whatsapp: window closed for %s, sending template %s", mask_phone(wa_id), name)
        await self._clients.graph.send(wa_id, {"type": "template", "template": {"name": name, "language": {"code": code}}})

    async def _send(self, wa_id: str, message: Dict[str, Any]) -> None:
        if await self._clients.graph.send(wa_id, message) == ERROR_OUTSIDE_WINDOW:
            await self._send_template(wa_id)


# -- input ----------------------------------------------------------------------------------
class WhatsAppInput(InputChannel):
    """Meta's WhatsApp Cloud API webhook."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(WhatsAppSettings.from_credentials(credentials))

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self._clients = _Clients(settings)
        self._tasks: Set[asyncio.Task] = set()
        self._reported_phone_number_ids: Set[str] = set()
        # Per sender only: every delivery comes from Meta's servers, so a limit per client IP
        # would limit all customers together (and Meta's retries), not anyone in particular.
        self.rate_limiter = RateLimiter(
            keys.WHATSAPP_PREFIX,
            [Limit("sender", settings.rate_limit_per_sender, settings.rate_limit_window_seconds)],
            redis=lambda: self._clients.redis,
        )

    def get_output_channel(self) -> OutputChannel:
        """The WhatsApp sender; Rasa uses it for ``output_channel=latest`` (agent messages)."""
        return WhatsAppOutput(self._clients)

    async def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Waits for the messages being handed to the assistant (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("whatsapp_webhook", __name__)

        @webhook.listener("before_server_start")
        async def bind(app: Any, *_: Any) -> None:
            # rasa.core.channels.channel.register hands messages to app.ctx.agent; the same
            # agent's tracker store has each conversation's language (read when needed, so a
            # model loaded later is seen too).
            self._clients.bind(app)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode")
            token = request.args.get("hub.verify_token") or ""
            challenge = request.args.get("hub.challenge")
            if mode == "subscribe" and challenge is not None and hmac.compare_digest(
                token.encode(), self.settings.verify_token.encode()
            ):
                return response.text(challenge)
            logger.warning("whatsapp: webhook verification refused (wrong mode or verify token)")
            return response.text("verification failed: hub.mode or hub.verify_token is wrong", status=403)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            signature = request.headers.get(SIGNATURE_HEADER)
            if not signature:
                logger.warning("whatsapp: delivery without %s refused", SIGNATURE_HEADER)
                return response.text(f"missing {SIGNATURE_HEADER} header", status=401)
            if not signature_is_valid(self.settings.app_secret, request.body or b"", signature):
                logger.warning("whatsapp: delivery with a wrong signature refused")
                return response.text(f"{SIGNATURE_HEADER} does not match the body", status=403)
            try:
                payload = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                return response.text("body is not valid JSON", status=400)
            if not isinstance(payload, dict):
                return response.text("body is not a JSON object", status=400)
            delivery = parse_delivery(payload, self.settings.phone_number_id)
            self._report_other_phone_number_ids(delivery.other_phone_number_ids)
            if delivery.messages:
                self._spawn(self._handle_messages(delivery.messages, on_new_message))
            return response.text("EVENT_RECEIVED")

        @webhook.listener("before_server_stop")
        async def finish(*_: Any) -> None:
            await self.wait_until_idle(timeout=10)

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self._clients.close()

        return webhook

    def _report_other_phone_number_ids(self, phone_number_ids: Iterable[str]) -> None:
        """Tells the operator, once per id, that deliveries for another number are dropped.

        Meta answers nothing back, so a ``phone_number_id`` left at its local default would
        otherwise ignore every customer in silence.
        """
        for phone_number_id in phone_number_ids:
            if phone_number_id in self._reported_phone_number_ids:
                continue
            if len(self._reported_phone_number_ids) >= MAX_REPORTED_PHONE_NUMBER_IDS:
                return
            self._reported_phone_number_ids.add(phone_number_id)
            default = " (the local default: set WHATSAPP_PHONE_NUMBER_ID)" if self.settings.phone_number_id == "0" else ""
            logger.warning(
                "whatsapp: ignoring deliveries for phone number id %s: this channel is configured for phone "
                "number id %s%s (phone_number_id in credentials.yml). Its customers' messages are answered 200 "
                "and not handled; logged once per phone number id.",
                phone_number_id, self.settings.phone_number_id, default)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # a reference, or the loop may drop the task half-way
        task.add_done_callback(self._tasks.discard)

    async def _handle_messages(self, messages: Iterable[InboundMessage],
                               on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        for message in messages:  # in order: one delivery may carry several messages
            try:
                await self._handle_message(message, on_new_message)
            except Exception:  # one bad message must not drop the others
                logger.exception("whatsapp: handling message %s from %s failed",
                                 message.message_id, mask_phone(message.wa_id))

    async def _handle_message(self, message: InboundMessage,
                              on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        redis = self._clients.redis
        who = mask_phone(message.wa_id)
        try:
            if not await state.first_delivery(redis, message.message_id):
                logger.info("whatsapp: message %s from %s delivered again, handled once", message.message_id, who)
                return
        except _redis_errors() as error:
            # Answering twice beats not answering: go on without the duplicate check.
            logger.warning("whatsapp: duplicate check unavailable (%s), handling %s", error, message.message_id)

        now = time.time()
        sent_at = min(message.timestamp or now, now)
        try:
            await state.record_inbound(redis, message.wa_id, sent_at)
        except _redis_errors() as error:
            logger.warning("whatsapp: could not record the 24-hour window of %s: %s", who, error)

        age = now - sent_at
        if age > self.settings.max_message_age_seconds:
            logger.warning("whatsapp: message %s from %s is %.0f s old (limit %d s), not answered",
                           message.message_id, who, age, self.settings.max_message_age_seconds)
            return
        if message.text is None:
            logger.info("whatsapp: %s from %s needs no answer", message.type, who)
            return

        verdict = await self.rate_limiter.check({"sender": message.wa_id}, notify=message.wa_id)
        if not verdict.allowed:
            logger.warning(
                "whatsapp: %s sent %d messages within %.0f s (limit %d); message %s not handed to the assistant%s",
                who, verdict.count, self.settings.rate_limit_window_seconds, self.settings.rate_limit_per_sender,
                message.message_id, ", the customer is told" if verdict.notify else "")
            if verdict.notify:
                await self._send_rate_limit_notice(message)
            return

        metadata = {
            "channel": CHANNEL_NAME,
            "phone": f"+{message.wa_id}",
            "wa_message_id": message.message_id,
            "profile_name": message.profile_name,
            "wa_message_type": message.type,
        }
        logger.debug("whatsapp: %s message %s from %s to the assistant", message.type, message.message_id, who)
        await on_new_message(UserMessage(
            text=message.text,
            output_channel=WhatsAppOutput(self._clients, turn=message),
            sender_id=message.wa_id,
            input_channel=self.name(),
            message_id=message.message_id,
            metadata=metadata,
        ))

    async def _send_rate_limit_notice(self, message: InboundMessage) -> None:
        """Tells a customer over the limit, once per window, in their language: the
        conversation's (the message never reaches the assistant, so it does not change it),
        else the message's if it is clear, else the phone number's, else Dutch."""
        language = await self._clients.language_slot(message.wa_id)
        if language is None:
            detection = _text_detection(message.text)
            if detection is not None and detection.reliable and detection.language in SUPPORTED_LANGUAGES:
                language = detection.language
        language = language or _phone_language(message.wa_id) or "nl"
        await WhatsAppOutput(self._clients).send_text_message(message.wa_id, notice_text(language))
