"""WhatsApp's 24-hour customer-service window, as both services read it.

WhatsApp lets a business send free text only within 24 hours of the customer's last message;
outside it only an approved template may be sent. The WhatsApp channel records the last inbound
time under :func:`contract.keys.whatsapp_window` (bot/channels/whatsapp_state.py); the channel
reads the window before it sends, the handoff service to show an agent how long it stays open.
No Redis import: the functions take whichever asyncio Redis client the caller has.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from contract import keys

#: Meta's customer-service window.
WINDOW_SECONDS = 24 * 3600


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
    return _as_float(await redis.get(keys.whatsapp_window(wa_id)))


async def window_seconds_left(redis: Any, wa_id: str, now: Optional[float] = None) -> int:
    """How many seconds free text can still be sent to this WhatsApp customer.

    0 means the window is closed: only a template can reach the customer until they write.

    Args:
        redis: a ``redis.asyncio.Redis`` client on the assistant's Redis database.
        wa_id: the customer's WhatsApp id, which is also the Rasa conversation id.
        now: the current unix time (tests).
    """
    return seconds_left(await last_inbound_at(redis, wa_id), now)
