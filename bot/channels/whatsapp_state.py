"""Redis state of the WhatsApp channel: every key it uses, and the 24-hour window.

WhatsApp lets a business send free text only within 24 hours of the customer's last message
(the customer-service window); outside it only an approved template may be sent. The channel
keeps, per customer (``wa_id``, the phone number in digits):

``whatsapp:window:<wa_id>``
    Unix time (seconds, as a string) of the customer's last inbound message, as WhatsApp
    timestamped it. Kept for :data:`WINDOW_KEY_TTL_SECONDS` so a console can also say
    "closed since ...". Read it with :func:`window_seconds_left`.
``whatsapp:lang:<wa_id>``
    No longer written: the channel reads the customer's language from the conversation's
    tracker (the ``language`` slot). Installations from before that may still hold "nl"/"en"
    here for up to 30 days; erasure (:mod:`handoff.privacy`) still deletes it.
``whatsapp:template:<wa_id>``
    Set while a template has been sent in the current closed window, so the customer gets one
    invitation, not one per bot or agent line. Cleared when the customer writes again.
``whatsapp:seen:<message id>``
    A delivered message id, so Meta's redeliveries are handled once (48 hours).
``whatsapp:ratelimit:sender:<hash of wa_id>``, ``whatsapp:ratelimit:notice:<hash>``, ``whatsapp:ratelimit:stats``
    The per-sender rate limit (:mod:`bot.channels.rate_limit`): messages in the current window,
    whether this window's notice is out, and refused messages since ever.

This module imports neither Rasa nor Sanic: the handoff service (its own environment, with
redis-py's asyncio client) can import it to show an agent how long the window stays open.
"""

from __future__ import annotations

import time
from typing import Any, Optional

KEY_PREFIX = "whatsapp"

# Meta's customer-service window.
WINDOW_SECONDS = 24 * 3600
# The last-inbound time outlives the window, so "closed" and "never wrote" can be told apart.
WINDOW_KEY_TTL_SECONDS = 7 * 24 * 3600
# Meta redelivers a webhook for up to a day or so; keep seen ids twice that.
SEEN_TTL_SECONDS = 48 * 3600
LANGUAGE_TTL_SECONDS = 30 * 24 * 3600

# Sets the last-inbound time only forward: a late redelivery of an old message must not shorten
# the window that a newer message opened.
_SET_IF_LATER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local candidate = tonumber(ARGV[1])
if candidate > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""


def seen_key(message_id: str) -> str:
    """Key marking a WhatsApp message id as delivered to the assistant."""
    return f"{KEY_PREFIX}:seen:{message_id}"


def window_key(wa_id: str) -> str:
    """Key holding the unix time of the customer's last inbound message."""
    return f"{KEY_PREFIX}:window:{wa_id}"


def language_key(wa_id: str) -> str:
    """Key that held the language of the last free text sent to the customer (no longer
    written; kept so an erasure removes what older installations stored)."""
    return f"{KEY_PREFIX}:lang:{wa_id}"


def template_key(wa_id: str) -> str:
    """Key set while a template invitation is out in the current closed window."""
    return f"{KEY_PREFIX}:template:{wa_id}"


def seconds_left(last_inbound: Optional[float], now: Optional[float] = None) -> int:
    """Seconds the window stays open after a last inbound message at ``last_inbound``.

    Returns 0 when the window is closed or the customer never wrote (``None``).
    """
    if last_inbound is None:
        return 0
    now = time.time() if now is None else now
    return max(0, int(last_inbound + WINDOW_SECONDS - now))


def _as_float(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


async def last_inbound_at(redis: Any, wa_id: str) -> Optional[float]:
    """Unix time of the customer's last inbound message, or None if unknown.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        wa_id: the customer's WhatsApp id (phone number digits, no "+").
    """
    return _as_float(await redis.get(window_key(wa_id)))


async def window_seconds_left(redis: Any, wa_id: str, now: Optional[float] = None) -> int:
    """How many seconds free text can still be sent to this WhatsApp customer.

    0 means the window is closed: only a template can reach the customer until they write.

    Args:
        redis: a ``redis.asyncio.Redis`` client on the assistant's Redis database.
        wa_id: the customer's WhatsApp id, which is also the Rasa conversation id.
        now: the current unix time (tests).
    """
    return seconds_left(await last_inbound_at(redis, wa_id), now)


async def record_inbound(redis: Any, wa_id: str, timestamp: float) -> None:
    """Opens (or extends) the window from a customer message sent at ``timestamp``."""
    await redis.eval(_SET_IF_LATER, 1, window_key(wa_id), str(int(timestamp)), WINDOW_KEY_TTL_SECONDS)
    await redis.delete(template_key(wa_id))


async def first_delivery(redis: Any, message_id: str) -> bool:
    """True the first time a message id is seen; False for Meta's redeliveries (atomic)."""
    return bool(await redis.set(seen_key(message_id), "1", nx=True, ex=SEEN_TTL_SECONDS))
