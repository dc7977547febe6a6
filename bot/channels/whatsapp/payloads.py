"""What Meta delivers to the webhook: the signature check and the parsing of a delivery.

Pure functions, no I/O: a delivery (the parsed JSON body) becomes :class:`InboundMessage` objects
in order. Text and the ids of interactive button/list replies go through as typed; images,
audio, video, documents, locations, stickers and contacts become :data:`UNSUPPORTED_MEDIA`;
reactions and system notices are not messages to answer (``text`` None). A malformed part is
skipped, never fatal (``tests/channels/test_whatsapp_fuzz.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from bot.channels.whatsapp.formatting import split_text

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"

# What the customer sent that the assistant cannot read: answered by utter_unsupported_media.
UNSUPPORTED_MEDIA = "/unsupported_media"
MEDIA_TYPES = frozenset(
    {"image", "audio", "video", "document", "sticker", "location", "contacts", "unsupported", "order"}
)
# Not something the customer asked: no reply (they still open the window).
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome"})

# What a customer's text can be at most (WhatsApp's own limit); anything longer that arrives
# anyway is cut here, so one huge delivery cannot tie up the assistant.
MAX_INBOUND_TEXT_CHARS = 4096
# Control characters mean nothing in a chat message (tab, line feed and carriage return do).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# JSON may spell a lone UTF-16 surrogate ("\\ud83d"); no UTF-8 can hold one, so it would break
# storing the turn (tracker, event stream) later on.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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


@dataclass
class Delivery:
    """One webhook delivery: the customer messages for our number, and which other business
    phone-number ids it was addressed to (those parts are left alone)."""

    messages: List[InboundMessage] = field(default_factory=list)
    other_phone_number_ids: List[str] = field(default_factory=list)


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


def parse_delivery(payload: Any, phone_number_id: Optional[str] = None) -> Delivery:
    """The customer messages in one webhook delivery, in order; status callbacks are skipped.

    Parts addressed to another business phone number than ``phone_number_id`` are left alone;
    their ids are in :attr:`Delivery.other_phone_number_ids` (once each, in order), so the
    channel can tell the operator.
    """
    found = Delivery()
    if not isinstance(payload, dict):
        return found
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            addressed_to = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if phone_number_id and addressed_to and addressed_to != str(phone_number_id):
                if addressed_to not in found.other_phone_number_ids:
                    found.other_phone_number_ids.append(addressed_to)
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
                found.messages.append(InboundMessage(
                    message_id=message_id,
                    wa_id=wa_id,
                    type=_str(message.get("type")) or "unknown",
                    text=clean_text(_text_of(message)),
                    timestamp=_timestamp(message.get("timestamp")),
                    profile_name=names.get(wa_id),
                ))
    return found


def inbound_messages(payload: Any, phone_number_id: Optional[str] = None) -> List[InboundMessage]:
    """The customer messages of :func:`parse_delivery`, in order."""
    return parse_delivery(payload, phone_number_id).messages
