"""The Graph API's ``/<phone number id>/messages`` endpoint, with bounded retries.

A send that gets HTTP 429 or a 5xx is tried again, at most ``max_attempts`` times in all, after
an exponential backoff (``retry_seconds``, doubled each time, with jitter) or after the wait the
answer's ``Retry-After`` asks for, whichever is longer. A ``Retry-After`` longer than
``max_wait_seconds`` is not waited for: the reply goes out during the customer's turn, which
holds the conversation's lock, and a reply minutes late is worse than a logged failure. Any
other 4xx is final at once (a wrong token, a closed window, a bad parameter do not heal). A
network error or a timeout is not retried either: the message may have gone out.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import Any, Awaitable, Callable, Dict, Optional

import aiohttp

from bot.channels.whatsapp.payloads import mask_phone

logger = logging.getLogger(__name__)

# Graph API error: more than 24 hours since the customer's last message.
ERROR_OUTSIDE_WINDOW = 131047
# Stays well under the conversation lock's lifetime (scripts/stack.py, TICKET_LOCK_LIFETIME = 25 s).
DEFAULT_MAX_WAIT_SECONDS = 10.0


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_retryable(status: int) -> bool:
    """HTTP 429 (throttled) and 5xx (Meta's side) may succeed later; any other status will not."""
    return status == 429 or 500 <= status <= 599


class GraphClient:
    """Sends WhatsApp message objects for one business phone number.

    Args:
        base_url: the Graph API base with its version, e.g. ``https://graph.facebook.com/v19.0``.
        phone_number_id: the business phone number's id (the sender).
        access_token: the bearer token.
        session: returns the shared ``aiohttp.ClientSession`` (created in the server's loop).
        max_attempts: tries per message in all, 1 = no retry.
        retry_seconds: the first backoff; doubled for each further retry.
        max_wait_seconds: the longest ``Retry-After`` (or backoff) that is waited for.
        sleep: ``asyncio.sleep`` (tests may pass another).
    """

    def __init__(self, base_url: str, phone_number_id: str, access_token: str,
                 session: Callable[[], aiohttp.ClientSession], max_attempts: int = 3,
                 retry_seconds: float = 0.5, max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._access_token = access_token
        self._session = session
        self.max_attempts = max(1, int(max_attempts))
        self.retry_seconds = max(0.0, float(retry_seconds))
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def __repr__(self) -> str:  # never the token
        return f"GraphClient({self.url!r}, max_attempts={self.max_attempts})"

    def _backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1, 2, ...): exponential, with jitter so many
        conversations throttled at once do not come back at the same moment."""
        return self.retry_seconds * 2 ** (retry - 1) * random.uniform(0.75, 1.25)

    async def send(self, wa_id: str, message: Dict[str, Any]) -> Optional[int]:
        """POSTs one message to ``wa_id``; returns None on success, else the Graph error code (or 0).

        Args:
            wa_id: the customer's WhatsApp id (phone number digits).
            message: a message object (``{"type": "text", "text": {...}}``); ``to``,
                ``messaging_product`` and ``recipient_type`` are filled in.
        """
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id, **message}
        headers = {"Authorization": f"Bearer {self._access_token}"}
        kind, who = message.get("type"), mask_phone(wa_id)
        attempt = 1
        while True:
            try:
                async with self._session().post(self.url, json=body, headers=headers) as reply:
                    try:
                        data = await reply.json(content_type=None)
                    except (ValueError, aiohttp.ContentTypeError):
                        data = {}
                    if reply.status < 400:
                        logger.debug("whatsapp: sent a %s message to %s", kind, who)
                        return None
                    status, retry_after = reply.status, reply.headers.get("Retry-After")
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.error("whatsapp: could not reach the Graph API for %s: %r", who, error)
                return 0
            refusal = data.get("error") if isinstance(data, dict) else None
            refusal = refusal if isinstance(refusal, dict) else {}
            code = refusal.get("code") or 0
            code = int(code) if isinstance(code, int) or str(code).isdigit() else 0
            wait = self._retry_wait(status, retry_after, attempt)
            if wait is None:
                logger.error("whatsapp: Graph API refused a %s message to %s: HTTP %s, code %s, %s%s",
                             kind, who, status, code, refusal.get("message"),
                             f" (after {attempt} attempts)" if attempt > 1 else "")
                return code
            logger.warning("whatsapp: Graph API answered HTTP %s to a %s message to %s; attempt %d of %d in %.1f s",
                           status, kind, who, attempt + 1, self.max_attempts, wait)
            await self._sleep(wait)
            attempt += 1

    def _retry_wait(self, status: int, retry_after: Optional[str], attempt: int) -> Optional[float]:
        """Seconds to wait before trying again, or None when this answer is final."""
        if not is_retryable(status) or attempt >= self.max_attempts:
            return None
        asked = retry_after_seconds(retry_after)
        if asked is not None and asked > self.max_wait_seconds:
            logger.warning("whatsapp: Graph API asks to retry after %.0f s, longer than %.0f s: not retried",
                           asked, self.max_wait_seconds)
            return None
        return min(max(asked or 0.0, self._backoff(attempt)), self.max_wait_seconds)
