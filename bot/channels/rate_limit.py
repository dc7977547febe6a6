"""Rate limits for the public customer channels (the WhatsApp webhook, the web widget).

A :class:`RateLimiter` counts messages per identity (a WhatsApp sender, a web session, a client
IP) in fixed windows: the first message of a window starts it, ``max_messages`` may pass, every
further one until the window ends is refused. Refused messages still count, so a sender who keeps
flooding stays refused until the window is over.

State lives in Redis when the channel has one (one Lua script: INCR + PEXPIRE on each limit's key,
atomic, so replicas of the assistant on one Redis share the limits), else in this process
(:class:`MemoryWindows`). Keys (``<prefix>`` is the channel's, e.g. ``whatsapp`` or ``webchat``;
built by :mod:`contract.keys`, ``ratelimit_*``)::

    <prefix>:ratelimit:<scope>:<hash>   messages in the current window (expires with it)
    <prefix>:ratelimit:notice:<hash>    set once the over-limit notice of this window is out
    <prefix>:ratelimit:stats            hash: refused messages per scope, since ever

Identities are stored and logged only as a hash (:func:`hashed`): a phone number, a session id
(the web customer's secret) or an IP address does not appear in Redis or the logs.

With several limits (per session, then per IP), they are checked in order and the first one that
refuses stops the check, so messages a session's own limit already refused do not also use up the
IP's budget (which other customers behind the same address share). The customer is told once per
window (:attr:`Verdict.notify`), whichever limit refused.

If Redis cannot be reached the limiter fails open: the message passes, a warning is logged (at most
once a minute, with how many passed unchecked) and :attr:`RateLimiter.stats` counts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

from contract import keys

logger = logging.getLogger(__name__)

# Notices, in the customer's language. Dutch addresses the customer with "u".
NOTICES = {
    "nl": ("U stuurt erg snel berichten achter elkaar, daarom heb ik de laatste niet gelezen. "
           "Wacht u even en stuurt u uw vraag dan opnieuw; uw volgende bericht beantwoord ik zo."),
    "en": ("You are sending messages very quickly, so I did not read the last ones. "
           "Please wait a moment and then send your question again; I will answer your next message shortly."),
}

# One round trip: for each limit in order INCR its counter (starting the window on the first
# message); the first limit over its maximum stops the loop, counts the refusal and claims this
# window's notice (SET NX for as long as the refusing window lasts).
# KEYS: counter per limit..., notice key, stats key. ARGV: number of limits, then per limit
# scope, max messages, window in ms. Returns {refusing limit (1-based, 0 = allowed), count,
# ms left in its window, 1 if this message carries the notice}.
_CHECK = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local max = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local count = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], window)
    ttl = window
  end
  if count > max then
    redis.call('HINCRBY', KEYS[n + 2], ARGV[3 * i - 1], 1)
    local notify = 0
    if redis.call('SET', KEYS[n + 1], '1', 'NX', 'PX', ttl) then
      notify = 1
    end
    return {i, count, ttl, notify}
  end
end
return {0, 0, 0, 0}
"""
_CHECK_SHA = hashlib.sha1(_CHECK.encode()).hexdigest()


def hashed(identity: str) -> str:
    """A short stable hash of an identity, for keys and logs (not reversible in practice)."""
    return hashlib.sha256(str(identity).encode("utf-8", "replace")).hexdigest()[:16]


@dataclass(frozen=True)
class Limit:
    """At most ``max_messages`` per ``window_seconds`` for each identity of ``scope``.

    ``max_messages`` 0 (or less) switches the limit off.
    """

    scope: str
    max_messages: int
    window_seconds: float

    @property
    def active(self) -> bool:
        return self.max_messages > 0 and self.window_seconds > 0

    @property
    def window_ms(self) -> int:
        return max(1, int(round(self.window_seconds * 1000)))


@dataclass(frozen=True)
class Verdict:
    """What the limiter says about one message."""

    allowed: bool
    # True for the one refused message per window that should tell the customer.
    notify: bool = False
    # The limit that refused it (its scope), and how many messages that identity sent in the window.
    limit: Optional[Limit] = None
    count: int = 0
    seconds_left: float = 0.0
    # The limiter could not be asked (Redis down): the message passes unchecked.
    unchecked: bool = False


ALLOWED = Verdict(True)


class MemoryWindows:
    """The same fixed windows in this process's memory (when the channel has no Redis).

    Expired windows are dropped as time passes, so memory stays bounded by the identities of
    the last window.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: Dict[str, List[float]] = {}  # key -> [count, ends at]
        self._notices: Dict[str, float] = {}  # key -> ends at
        self.stats: Counter = Counter()
        self._next_sweep = 0.0

    def check(self, keys: Sequence[Tuple[str, Limit]], notice_key: str) -> Verdict:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        for key, limit in keys:
            window = self._counts.get(key)
            if window is None or window[1] <= now:
                window = self._counts[key] = [0, now + limit.window_seconds]
            window[0] += 1
            if window[0] > limit.max_messages:
                self.stats[limit.scope] += 1
                left = window[1] - now
                notify = self._notices.get(notice_key, 0.0) <= now
                if notify:
                    self._notices[notice_key] = window[1]
                return Verdict(False, notify, limit, int(window[0]), left)
        return ALLOWED

    def _sweep(self, now: float) -> None:
        self._counts = {k: w for k, w in self._counts.items() if w[1] > now}
        self._notices = {k: end for k, end in self._notices.items() if end > now}
        self._next_sweep = now + 10.0


def _redis_errors() -> Tuple[Type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


class RateLimiter:
    """Fixed-window limits for one channel, in Redis or (without it) in memory.

    Args:
        prefix: the channel's key prefix ("whatsapp", "webchat").
        limits: the limits, checked in this order (see the module docstring).
        redis: a callable returning the channel's ``redis.asyncio.Redis`` client, or None for
            the in-process fallback.
        clock: the in-process fallback's clock (tests).
    """

    def __init__(self, prefix: str, limits: Sequence[Limit], redis: Optional[Callable[[], Any]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self.limits = {limit.scope: limit for limit in limits if limit.active}
        self._redis = redis
        self._memory = MemoryWindows(clock)
        # allowed, limited, notices, unchecked (Redis down): for logs and tests.
        self.stats: Counter = Counter()
        self._unchecked_since_warning = 0
        self._next_warning = 0.0

    @property
    def uses_redis(self) -> bool:
        return self._redis is not None

    def stats_key(self) -> str:
        return keys.ratelimit_stats(self.prefix)

    def counter_key(self, scope: str, identity: str) -> str:
        return keys.ratelimit_counter(self.prefix, scope, hashed(identity))

    def notice_key(self, identity: str) -> str:
        return keys.ratelimit_notice(self.prefix, hashed(identity))

    async def check(self, identities: Dict[str, Optional[str]], notify: str) -> Verdict:
        """Counts one message of ``identities`` ({scope: identity}, checked in the limits' order;
        a scope without a limit or with identity None is skipped); ``notify`` is who would get
        the notice (the sender, the session)."""
        keys = [(self.counter_key(scope, identity), limit) for scope, limit in self.limits.items()
                if (identity := identities.get(scope))]
        if not keys:
            self.stats["allowed"] += 1
            return ALLOWED
        if self._redis is None:
            verdict = self._memory.check(keys, self.notice_key(notify))
        else:
            try:
                verdict = await self._check_redis(self._redis(), keys, self.notice_key(notify))
            except _redis_errors() as error:
                self._failed_open(error)
                return Verdict(True, unchecked=True)
        self.stats["allowed" if verdict.allowed else "limited"] += 1
        if verdict.notify:
            self.stats["notices"] += 1
        return verdict

    async def _check_redis(self, redis: Any, keys: Sequence[Tuple[str, Limit]], notice_key: str) -> Verdict:
        from redis.exceptions import NoScriptError

        redis_keys = [key for key, _ in keys] + [notice_key, self.stats_key()]
        args: List[Any] = [len(keys)]
        for _, limit in keys:
            args += [limit.scope, limit.max_messages, limit.window_ms]
        try:
            result = await redis.evalsha(_CHECK_SHA, len(redis_keys), *redis_keys, *args)
        except NoScriptError:
            result = await redis.eval(_CHECK, len(redis_keys), *redis_keys, *args)
        index, count, ms_left, notify = (int(value) for value in result)
        if index == 0:
            return ALLOWED
        return Verdict(False, bool(notify), keys[index - 1][1], count, ms_left / 1000.0)

    def _failed_open(self, error: BaseException) -> None:
        self.stats["unchecked"] += 1
        self._unchecked_since_warning += 1
        now = time.monotonic()
        if now >= self._next_warning:
            logger.warning("%s: rate limit unavailable (%r); %d message(s) let through unchecked",
                           self.prefix, error, self._unchecked_since_warning)
            self._unchecked_since_warning = 0
            self._next_warning = now + 60.0


def notice_text(language: Optional[str]) -> str:
    """The over-limit notice in "nl" or "en" (Dutch for anything else)."""
    return NOTICES.get(language or "nl", NOTICES["nl"])
