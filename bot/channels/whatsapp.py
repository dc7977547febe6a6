"""WhatsApp Cloud API channel: Meta's webhook in, the Graph API's /messages out.

Registered in credentials.yml as ``bot.channels.whatsapp.WhatsAppInput`` (values from the
environment); the webhook is ``/webhooks/whatsapp/webhook``:

- ``GET`` answers Meta's verification handshake (``hub.verify_token`` must match).
- ``POST`` accepts a delivery only with a valid ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw
  body with the app secret); anything else is refused with a 4xx and not looked at. It answers
  200 at once and hands the messages to the assistant in a background task, so Meta's retries
  do not pile up behind a slow turn.

Each WhatsApp message reaches Rasa once (Redis ``SET NX`` on its id), as the conversation of
its ``wa_id`` (the phone number in digits), with metadata ``channel``, ``phone`` ("+<wa_id>"),
``wa_message_id``, ``profile_name`` and ``wa_message_type``. Text and the ids of interactive
button/list replies go through as typed; images, audio, video, documents, locations, stickers
and contacts become ``/unsupported_media`` (the ``unsupported_media`` intent, answered with
``utter_unsupported_media`` in the customer's language, without NLU); reactions and system
notices are not messages to answer.

Rate limit: per sender (``wa_id``) at most ``rate_limit_per_sender`` messages per
``rate_limit_window_seconds`` (default 20 per 60 s) reach the assistant, counted in the channel's
Redis (:mod:`bot.channels.rate_limit`). Meta still gets its 200 at once; a message over the limit
is logged (masked number) and counted, not answered, and the customer gets one notice per window
in their language (the channel's language, else the message's, else the phone number's). If Redis
is down the limit is not applied (fail open). No per-IP limit: deliveries come from Meta.

Stale deliveries: a message older than ``max_message_age_seconds`` (by WhatsApp's timestamp;
this happens after an outage, when Meta redelivers) is logged and skipped: it still opens the
24-hour window, but the assistant does not answer a question the customer asked long ago as if
it were new, nor in a jumble of replayed turns.

Replies: text over 4096 characters is split at paragraph, then sentence, then word
boundaries; up to three buttons become an interactive "button" message, more a "list". Outside
the 24-hour customer-service window (see :mod:`bot.channels.whatsapp_state`) only the approved
template for the customer's language is sent, once per closed window. That language is the one
of the last free text sent to this customer (the assistant always answers in the customer's
language, and so do agents), else the phone number's country (+31/+32 Dutch), else Dutch.

The output channel also serves agent messages and hand-back actions that the handoff service
posts to Rasa's HTTP API with ``output_channel=latest`` (:meth:`WhatsAppInput.get_output_channel`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Text, Tuple

import aiohttp
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException

from bot.channels import whatsapp_state as state
from bot.channels.rate_limit import Limit, RateLimiter, notice_text
from bot.channels.whatsapp_state import window_seconds_left  # noqa: F401  (public helper)

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
DEFAULT_GRAPH_API_URL = "https://graph.facebook.com/v19.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"

# What the customer sent that the assistant cannot read: answered by utter_unsupported_media.
UNSUPPORTED_MEDIA = "/unsupported_media"
MEDIA_TYPES = frozenset(
    {"image", "audio", "video", "document", "sticker", "location", "contacts", "unsupported", "order"}
)
# Not something the customer asked: no reply (they still open the window).
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome"})

# WhatsApp Cloud API limits.
MAX_TEXT_CHARS = 4096
# What a customer's text can be at most (WhatsApp's own limit); anything longer that arrives
# anyway is cut here, so one huge delivery cannot tie up the assistant.
MAX_INBOUND_TEXT_CHARS = 4096
# Control characters mean nothing in a chat message (tab, line feed and carriage return do).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# JSON may spell a lone UTF-16 surrogate ("\\ud83d"); no UTF-8 can hold one, so it would break
# storing the turn (tracker, event stream) later on.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_INTERACTIVE_BODY_CHARS = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE_CHARS = 20
MAX_BUTTON_ID_CHARS = 256
MAX_LIST_ROWS = 10
MAX_ROW_TITLE_CHARS = 24
MAX_ROW_DESCRIPTION_CHARS = 72
MAX_ROW_ID_CHARS = 200
MAX_LIST_BUTTON_CHARS = 20

# Graph API error: more than 24 hours since the customer's last message.
ERROR_OUTSIDE_WINDOW = 131047
SUPPORTED_LANGUAGES = ("nl", "en")


# -- settings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhatsAppSettings:
    """The channel's settings, from its section in credentials.yml."""

    verify_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    phone_number_id: str
    graph_api_url: str = DEFAULT_GRAPH_API_URL
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

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "WhatsAppSettings":
        """Reads and checks the settings; raises :class:`RasaException` naming what is missing."""
        credentials = credentials or {}
        missing = [name for name in cls.REQUIRED if not str(credentials.get(name) or "").strip()]
        if missing:
            raise RasaException(
                f"The WhatsApp channel needs {', '.join(missing)} in credentials.yml "
                f"(bot.channels.whatsapp.WhatsAppInput), e.g. from the WHATSAPP_* environment variables."
            )
        values: Dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if credentials.get(name) not in (None, ""):
                values[name] = credentials[name]
        try:
            for name in ("redis_port", "redis_db", "max_message_age_seconds", "rate_limit_per_sender"):
                if name in values:
                    values[name] = int(values[name])
            if "rate_limit_window_seconds" in values:
                values["rate_limit_window_seconds"] = float(values["rate_limit_window_seconds"])
        except (TypeError, ValueError) as error:
            raise RasaException(f"WhatsApp channel: {error}") from error
        if values.get("rate_limit_window_seconds", 60.0) <= 0:
            raise RasaException("WhatsApp channel: rate_limit_window_seconds must be positive")
        for name in ("verify_token", "app_secret", "access_token", "phone_number_id"):
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


# -- pure helpers ---------------------------------------------------------------------------
def mask_phone(wa_id: Optional[str]) -> str:
    """A phone number fit for logs: country code and last three digits ("+31******678")."""
    digits = re.sub(r"\D", "", wa_id or "")
    if len(digits) <= 5:
        return "+" + "*" * len(digits)
    return f"+{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"


def signature_is_valid(app_secret: str, body: bytes, header: Optional[str]) -> bool:
    """Checks Meta's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


_SENTENCE_END = re.compile(r"[.!?…][\"'”»)\]]*\s")


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the first piece has at most ``limit`` characters."""
    window = text[: limit + 1]
    floor = limit // 4  # never cut off a sliver when a rougher cut keeps pieces balanced
    paragraph = window.rfind("\n\n", 0, limit)
    if paragraph >= floor:
        return paragraph
    sentences = [m.end() - 1 for m in _SENTENCE_END.finditer(window) if m.end() - 1 <= limit]
    if sentences and sentences[-1] >= floor:
        return sentences[-1]
    for separator in ("\n", " "):
        position = window.rfind(separator, 0, limit)
        if position >= floor:
            return position
    return limit


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> List[str]:
    """Splits a long text into messages of at most ``limit`` characters.

    Cuts at a paragraph break if one is in reach, else after a sentence, else at a line break
    or a space, and only as a last resort inside a word.
    """
    rest = (text or "").strip()
    pieces: List[str] = []
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def split_tail(text: str, limit: int) -> Tuple[str, str]:
    """(head, tail): ``tail`` is the last piece of ``text`` of at most ``limit`` characters."""
    text = (text or "").strip()
    if len(text) <= limit:
        return "", text
    tail = split_text(text, limit)[-1]
    return text[: text.rfind(tail)].rstrip(), tail


def shorten(title: str, limit: int) -> str:
    """Fits a title into ``limit`` characters, at a word boundary where possible, with "…"."""
    title = " ".join(str(title or "").split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–") + "…"


def _unique(titles: List[str], limit: int) -> List[str]:
    """WhatsApp refuses two buttons (or rows) with the same title: number the repeats."""
    seen: Set[str] = set()
    result = []
    for title in titles:
        candidate, number = title, 2
        while candidate in seen:
            suffix = f" {number}"
            candidate = shorten(title, limit - len(suffix)) + suffix
            number += 1
        seen.add(candidate)
        result.append(candidate)
    return result


def _button_id(button: Dict[str, Any], limit: int) -> str:
    """What comes back when the customer taps: the Rasa payload ("/affirm"), else the title."""
    payload = str(button.get("payload") or "").strip()
    title = str(button.get("title") or "").strip()
    if payload and len(payload) <= limit:
        return payload
    return (title or payload)[:limit]


def reply_buttons_message(body: str, buttons: List[Dict[str, Any]]) -> Dict[str, Any]:
    """An interactive "button" message (at most three reply buttons)."""
    titles = _unique([shorten(b.get("title") or b.get("payload") or "", MAX_BUTTON_TITLE_CHARS)
                      for b in buttons[:MAX_REPLY_BUTTONS]], MAX_BUTTON_TITLE_CHARS)
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": _button_id(button, MAX_BUTTON_ID_CHARS), "title": title}}
                    for button, title in zip(buttons, titles)
                ]
            },
        },
    }


def list_message(body: str, buttons: List[Dict[str, Any]], list_button: str) -> Dict[str, Any]:
    """An interactive "list" message: one section, at most ten rows.

    A title too long for a row (24 characters) is shortened, and shown in full as the row's
    description.
    """
    if len(buttons) > MAX_LIST_ROWS:
        logger.warning("whatsapp: %d buttons, a list shows %d; the rest are left out", len(buttons), MAX_LIST_ROWS)
        buttons = buttons[:MAX_LIST_ROWS]
    full_titles = [" ".join(str(b.get("title") or b.get("payload") or "").split()) for b in buttons]
    titles = _unique([shorten(t, MAX_ROW_TITLE_CHARS) for t in full_titles], MAX_ROW_TITLE_CHARS)
    rows = []
    for button, title, full in zip(buttons, titles, full_titles):
        row: Dict[str, Any] = {"id": _button_id(button, MAX_ROW_ID_CHARS), "title": title}
        if full != title:
            row["description"] = shorten(full, MAX_ROW_DESCRIPTION_CHARS)
        rows.append(row)
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": body},
            "action": {"button": shorten(list_button, MAX_LIST_BUTTON_CHARS), "sections": [{"rows": rows}]},
        },
    }


@dataclass(frozen=True)
class InboundMessage:
    """One customer message from a webhook delivery.

    ``text`` is what the assistant receives; None for messages that need no answer.
    """

    message_id: str
    wa_id: str
    type: str
    text: Optional[str]
    timestamp: Optional[float]
    profile_name: Optional[str]


def _dict(value: Any) -> Dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a malformed delivery is skipped, not fatal)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> List[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    """A JSON string or number as text; anything else (objects, arrays, null, booleans) as ""."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value)


def _text_of(message: Dict[str, Any]) -> Optional[str]:
    kind = message.get("type")
    if kind == "text":
        return _str(_dict(message.get("text")).get("body"))
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply_type = interactive.get("type")
        if reply_type in ("button_reply", "list_reply"):
            reply = _dict(interactive.get(reply_type))
            return _str(reply.get("id")) or _str(reply.get("title"))
        return UNSUPPORTED_MEDIA
    if kind == "button":  # a quick-reply button of a template message
        button = _dict(message.get("button"))
        return _str(button.get("payload")) or _str(button.get("text"))
    if isinstance(kind, str) and kind in IGNORED_TYPES:
        return None
    # Media, locations, contacts, and any type this code does not know yet.
    return UNSUPPORTED_MEDIA


def clean_text(text: Optional[str]) -> Optional[str]:
    """A customer's text as the assistant gets it: without control characters, lone surrogates
    replaced by U+FFFD, at most ``MAX_INBOUND_TEXT_CHARS`` long (cut at a word where one is near)."""
    if text is None:
        return None
    text = _LONE_SURROGATE.sub("\ufffd", _CONTROL_CHARACTERS.sub("", text))
    if len(text) > MAX_INBOUND_TEXT_CHARS:
        logger.warning("whatsapp: a text of %d characters, only the first %d are read", len(text),
                       MAX_INBOUND_TEXT_CHARS)
        text = split_text(text, MAX_INBOUND_TEXT_CHARS)[0]
    return text


def _timestamp(value: Any) -> Optional[float]:
    """WhatsApp's send time (epoch seconds as a string); None when missing or not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None


def inbound_messages(payload: Dict[str, Any], phone_number_id: Optional[str] = None) -> List[InboundMessage]:
    """The customer messages in one webhook delivery, in order; status callbacks are skipped.

    Messages addressed to another business phone number of the same app are left alone.
    """
    found: List[InboundMessage] = []
    if not isinstance(payload, dict):
        return found
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            addressed_to = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if phone_number_id and addressed_to and addressed_to != str(phone_number_id):
                logger.debug("whatsapp: delivery for another phone number id, ignored")
                continue
            for status in _list(value.get("statuses")):
                status = _dict(status)
                if status.get("status") == "failed":
                    error = _dict((_list(status.get("errors")) or [{}])[0])
                    logger.warning("whatsapp: message %s to %s failed: %s %s", _str(status.get("id")),
                                   mask_phone(_str(status.get("recipient_id"))), error.get("code"), error.get("title"))
            names: Dict[str, str] = {}
            for contact in _list(value.get("contacts")):
                contact = _dict(contact)
                name = _dict(contact.get("profile")).get("name")
                if isinstance(name, str):
                    names[re.sub(r"\D", "", _str(contact.get("wa_id")))] = name
            for message in _list(value.get("messages")):
                message = _dict(message)
                message_id = _str(message.get("id"))
                wa_id = re.sub(r"\D", "", _str(message.get("from")))
                if not message_id or not wa_id:  # nobody to answer, or nothing to deduplicate on
                    continue
                found.append(InboundMessage(
                    message_id=message_id,
                    wa_id=wa_id,
                    type=_str(message.get("type")) or "unknown",
                    text=clean_text(_text_of(message)),
                    timestamp=_timestamp(message.get("timestamp")),
                    profile_name=names.get(wa_id),
                ))
    return found


# -- shared clients -------------------------------------------------------------------------
class _Clients:
    """Redis and HTTP clients shared by the input channel and every output channel it makes.

    Created on first use inside the server's event loop, closed when the server stops.
    """

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self._http: Optional[aiohttp.ClientSession] = None

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

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._redis is not None:
            await self._redis.close()
            self._redis = None


def _redis_errors() -> Tuple[type, ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


# -- output ---------------------------------------------------------------------------------
class WhatsAppOutput(OutputChannel):
    """Sends the assistant's and agents' messages through the WhatsApp Cloud API."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(self, clients: _Clients) -> None:
        self._clients = clients
        self.settings = clients.settings

    # Rasa's entry points.
    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        if not text or not await self._may_send_free_text(recipient_id):
            return
        await self._remember_language(recipient_id, text)
        for part in split_text(text, MAX_TEXT_CHARS):
            await self._send(recipient_id, {"type": "text", "text": {"preview_url": False, "body": part}})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        buttons = [b for b in buttons or [] if isinstance(b, dict) and (b.get("title") or b.get("payload"))]
        if not buttons:
            await self.send_text_message(recipient_id, text, **kwargs)
            return
        if not await self._may_send_free_text(recipient_id):
            return
        if text:
            await self._remember_language(recipient_id, text)
        head, body = split_tail(text or "", MAX_INTERACTIVE_BODY_CHARS)
        for part in split_text(head, MAX_TEXT_CHARS):
            await self._send(recipient_id, {"type": "text", "text": {"preview_url": False, "body": part}})
        body = body or "…"  # WhatsApp requires a body on interactive messages
        if len(buttons) <= MAX_REPLY_BUTTONS:
            message = reply_buttons_message(body, buttons)
        else:
            message = list_message(body, buttons, self.settings.list_button(await self._language(recipient_id)))
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

    # The 24-hour window and the template.
    async def _may_send_free_text(self, wa_id: str) -> bool:
        """True inside the window; otherwise sends the template (once) and returns False."""
        try:
            left = await state.window_seconds_left(self._clients.redis, wa_id)
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
            first = await self._clients.redis.set(state.template_key(wa_id), "1", nx=True, ex=state.WINDOW_SECONDS)
        except _redis_errors():
            first = True
        if not first:
            logger.info("whatsapp: window closed for %s and the template is already out; message not sent",
                        mask_phone(wa_id))
            return
        name, code = self.settings.template(await self._language(wa_id))
        logger.info("whatsapp: window closed for %s, sending template %s", mask_phone(wa_id), name)
        await self._post(wa_id, {"type": "template", "template": {"name": name, "language": {"code": code}}})

    async def _known_language(self, wa_id: str) -> Optional[str]:
        """The language of the last free text sent to the customer, if the channel knows it."""
        try:
            stored = await self._clients.redis.get(state.language_key(wa_id))
        except _redis_errors():
            stored = None
        return stored if stored in SUPPORTED_LANGUAGES else None

    async def _language(self, wa_id: str) -> str:
        """The customer's language as far as the channel knows it (see the module docstring)."""
        stored = await self._known_language(wa_id)
        if stored:
            return stored
        from bot.language import language_from_phone_number

        return language_from_phone_number("+" + wa_id) or "nl"

    async def _remember_language(self, wa_id: str, text: str) -> None:
        from bot.language import get_detector

        detection = get_detector().detect(text)
        if not detection.reliable or detection.language not in SUPPORTED_LANGUAGES:
            return
        try:
            await self._clients.redis.set(state.language_key(wa_id), detection.language,
                                          ex=state.LANGUAGE_TTL_SECONDS)
        except _redis_errors() as error:
            logger.warning("whatsapp: could not store the language of %s: %s", mask_phone(wa_id), error)

    # The Graph API.
    async def _send(self, wa_id: str, message: Dict[str, Any]) -> None:
        error_code = await self._post(wa_id, message)
        if error_code == ERROR_OUTSIDE_WINDOW:
            await self._send_template(wa_id)

    async def _post(self, wa_id: str, message: Dict[str, Any]) -> Optional[int]:
        """POSTs one message; returns None on success, else the Graph error code (or 0)."""
        url = f"{self.settings.graph_api_url}/{self.settings.phone_number_id}/messages"
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id, **message}
        headers = {"Authorization": f"Bearer {self.settings.access_token}"}
        try:
            async with self._clients.http.post(url, json=body, headers=headers) as reply:
                try:
                    data = await reply.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    data = {}
                if reply.status < 400:
                    logger.debug("whatsapp: sent a %s message to %s", message.get("type"), mask_phone(wa_id))
                    return None
                error = data.get("error") if isinstance(data, dict) else None
                error = error if isinstance(error, dict) else {}
                code = error.get("code") or 0
                logger.error("whatsapp: Graph API refused a %s message to %s: HTTP %s, code %s, %s",
                             message.get("type"), mask_phone(wa_id), reply.status, code, error.get("message"))
                return int(code) if isinstance(code, int) or str(code).isdigit() else 0
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.error("whatsapp: could not reach the Graph API for %s: %r", mask_phone(wa_id), error)
            return 0


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
        # Per sender only: every delivery comes from Meta's servers, so a limit per client IP
        # would limit all customers together (and Meta's retries), not anyone in particular.
        self.rate_limiter = RateLimiter(
            state.KEY_PREFIX,
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
            messages = inbound_messages(payload, self.settings.phone_number_id)
            if messages:
                self._spawn(self._handle_messages(messages, on_new_message))
            return response.text("EVENT_RECEIVED")

        @webhook.listener("before_server_stop")
        async def finish(*_: Any) -> None:
            await self.wait_until_idle(timeout=10)

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self._clients.close()

        return webhook

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
            output_channel=self.get_output_channel(),
            sender_id=message.wa_id,
            input_channel=self.name(),
            message_id=message.message_id,
            metadata=metadata,
        ))

    async def _send_rate_limit_notice(self, message: InboundMessage) -> None:
        """Tells a customer over the limit, once per window, in their language."""
        output = WhatsAppOutput(self._clients)
        language = await output._known_language(message.wa_id)
        if language is None and message.text and not message.text.startswith("/"):
            from bot.language import get_detector

            detection = get_detector().detect(message.text)
            if detection.reliable and detection.language in SUPPORTED_LANGUAGES:
                language = detection.language
        if language is None:
            language = await output._language(message.wa_id)
        await output.send_text_message(message.wa_id, notice_text(language))
