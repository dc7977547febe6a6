"""WhatsApp Cloud API channel: Meta's webhook in, the Graph API's /messages out.

Registered in credentials.yml as ``bot.channels.whatsapp.WhatsAppInput`` (values from the
environment); the webhook is ``/webhooks/whatsapp/webhook``. The package:

- :mod:`.payloads`: the signature check and a delivery parsed into customer messages;
- :mod:`.formatting`: replies as WhatsApp message objects (split text, buttons, lists);
- :mod:`.graph`: the Graph API client (retries on 429 and 5xx, honouring ``Retry-After``);
- :mod:`.channel`: the settings, the webhook (:class:`WhatsAppInput`) and the sender
  (:class:`WhatsAppOutput`);
- what it writes to Redis is in :mod:`bot.channels.whatsapp_state`; its keys and the 24-hour
  window, which the handoff service reads too, are in the contract package (:mod:`contract.keys`,
  :mod:`contract.whatsapp_window`).

Webhook:

- ``GET`` answers Meta's verification handshake (``hub.verify_token`` must match).
- ``POST`` accepts a delivery only with a valid ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw
  body with the app secret); anything else is refused with a 4xx and not looked at. It answers
  200 at once and hands the messages to the assistant in a background task, so Meta's retries
  do not pile up behind a slow turn. A delivery for another business phone-number id is left
  alone and logged (once per id, with the configured id): with ``phone_number_id`` left at the
  local default every real customer would otherwise be ignored in silence.

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
in their language (the conversation's, else the message's, else the phone number's). If Redis
is down the limit is not applied (fail open). No per-IP limit: deliveries come from Meta.

Stale deliveries: a message older than ``max_message_age_seconds`` (by WhatsApp's timestamp;
this happens after an outage, when Meta redelivers) is logged and skipped: it still opens the
24-hour window, but the assistant does not answer a question the customer asked long ago as if
it were new, nor in a jumble of replayed turns.

Replies: text over 4096 characters is split at paragraph, then sentence, then word
boundaries; up to three buttons become an interactive "button" message, more a "list". Outside
the 24-hour customer-service window (see :mod:`contract.whatsapp_window`) only the approved
template for the customer's language is sent, once per closed window. The customer's language is
the ``language`` slot of their conversation, read from Rasa's tracker store (the agent the
channel's app serves); while answering a message, as the assistant decides it for that message;
without a conversation, the phone number's country (+31/+32 Dutch), else Dutch.

The output channel also serves agent messages and hand-back actions that the handoff service
posts to Rasa's HTTP API with ``output_channel=latest`` (:meth:`WhatsAppInput.get_output_channel`).
"""

from bot.channels.whatsapp.channel import (
    CHANNEL_NAME,
    DEFAULT_GRAPH_API_URL,
    SUPPORTED_LANGUAGES,
    WhatsAppInput,
    WhatsAppOutput,
    WhatsAppSettings,
)
from bot.channels.whatsapp.formatting import (
    MAX_BUTTON_TITLE_CHARS,
    MAX_INTERACTIVE_BODY_CHARS,
    MAX_LIST_ROWS,
    MAX_REPLY_BUTTONS,
    MAX_ROW_TITLE_CHARS,
    MAX_TEXT_CHARS,
    list_message,
    reply_buttons_message,
    shorten,
    split_tail,
    split_text,
)
from bot.channels.whatsapp.graph import ERROR_OUTSIDE_WINDOW, GraphClient
from bot.channels.whatsapp.payloads import (
    IGNORED_TYPES,
    MAX_INBOUND_TEXT_CHARS,
    MEDIA_TYPES,
    SIGNATURE_HEADER,
    UNSUPPORTED_MEDIA,
    Delivery,
    InboundMessage,
    clean_text,
    inbound_messages,
    mask_phone,
    parse_delivery,
    signature_is_valid,
)
from contract.whatsapp_window import window_seconds_left

__all__ = [
    "CHANNEL_NAME", "DEFAULT_GRAPH_API_URL", "SUPPORTED_LANGUAGES", "WhatsAppInput", "WhatsAppOutput",
    "WhatsAppSettings", "MAX_BUTTON_TITLE_CHARS", "MAX_INTERACTIVE_BODY_CHARS", "MAX_LIST_ROWS",
    "MAX_REPLY_BUTTONS", "MAX_ROW_TITLE_CHARS", "MAX_TEXT_CHARS", "list_message", "reply_buttons_message",
    "shorten", "split_tail", "split_text", "ERROR_OUTSIDE_WINDOW", "GraphClient", "IGNORED_TYPES",
    "MAX_INBOUND_TEXT_CHARS", "MEDIA_TYPES", "SIGNATURE_HEADER", "UNSUPPORTED_MEDIA", "Delivery",
    "InboundMessage", "clean_text", "inbound_messages", "mask_phone", "parse_delivery", "signature_is_valid",
    "window_seconds_left",
]
