"""What the WhatsApp channel writes to Redis: the customer's last inbound time and delivered ids.

WhatsApp lets a business send free text only within 24 hours of the customer's last message
(the customer-service window, read with :mod:`contract.whatsapp_window`); outside it only an
approved template may be sent. Per customer (``wa_id``, the phone number in digits) the channel
keeps the last inbound time, a template-invitation marker, and per message id a "seen" marker so
Meta's redeliveries are handled once. The keys and their meaning are in :mod:`contract.keys`
(``whatsapp_*``); the handoff service reads the window from the same Redis.
"""

from __future__ import annotations

from typing import Any

from contract import keys

# The last-inbound time outlives the window, so "closed" and "never wrote" can be told apart.
WINDOW_KEY_TTL_SECONDS = 7 * 24 * 3600
# Meta redelivers a webhook for up to a day or so; keep seen ids twice that.
SEEN_TTL_SECONDS = 48 * 3600

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


async def record_inbound(redis: Any, wa_id: str, timestamp: float) -> None:
    """Opens (or extends) the window from a customer message sent at ``timestamp``."""
    await redis.eval(_SET_IF_LATER, 1, keys.whatsapp_window(wa_id), str(int(timestamp)), WINDOW_KEY_TTL_SECONDS)
    await redis.delete(keys.whatsapp_template(wa_id))


async def first_delivery(redis: Any, message_id: str) -> bool:
    """True the first time a message id is seen; False for Meta's redeliveries (atomic)."""
    return bool(await redis.set(keys.whatsapp_seen(message_id), "1", nx=True, ex=SEEN_TTL_SECONDS))
