"""Retention and the Rasa tracker key: the privacy facts both environments share.

Imports neither Rasa nor Sanic, so the handoff service (its own environment) uses the same
retention setting and the same tracker key as the Rasa server:

``RETENTION_DAYS`` (default 30)
    How long transcripts and closed cases are kept: a Rasa tracker expires this many days after
    the conversation's last activity (Redis expiry, set at every save by
    ``bot/tracker_store.py``); the handoff service deletes transcripts and closed cases this many
    days after the last activity / the closing (``handoff/privacy.py``). Open cases and unkept
    promises never expire. ``0`` keeps everything (no expiry).

The tracker key
    Rasa's ``RedisTrackerStore`` stores a conversation under ``<key_prefix>:tracker:<sender_id>``
    (``key_prefix`` in endpoints.yml, ``helder``; Rasa ignores a prefix that is not alphanumeric
    and then uses ``tracker:<sender_id>``). :func:`tracker_key` is the one place that knows it;
    ``tests/unit/test_privacy_keys.py`` checks it against Rasa's own store.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

RETENTION_ENV = "RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
#: endpoints.yml ``tracker_store.key_prefix``.
DEFAULT_TRACKER_KEY_PREFIX = "helder"
_RASA_TRACKER_PART = "tracker:"


def retention_days(environ: Optional[Mapping[str, str]] = None) -> float:
    """``RETENTION_DAYS`` from the environment (default 30; 0 = keep for ever).

    Raises:
        ValueError: not a number, or negative.
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get(RETENTION_ENV) or "").strip()
    if not raw:
        return float(DEFAULT_RETENTION_DAYS)
    try:
        days = float(raw)
    except ValueError as error:
        raise ValueError(f"{RETENTION_ENV}={raw!r} is not a number of days") from error
    if days < 0 or days != days:
        raise ValueError(f"{RETENTION_ENV}={raw!r} must be 0 (keep) or a positive number of days")
    return days


def retention_seconds(days: Optional[float] = None) -> Optional[int]:
    """The retention as whole seconds for a Redis expiry; None when nothing expires (0 days)."""
    days = retention_days() if days is None else days
    seconds = int(days * 86400)
    return seconds if seconds > 0 else None


def tracker_prefix(key_prefix: Optional[str] = DEFAULT_TRACKER_KEY_PREFIX) -> str:
    """What Rasa's Redis tracker store puts in front of a sender id, for this ``key_prefix``."""
    if isinstance(key_prefix, str) and key_prefix.isalnum():
        return f"{key_prefix}:{_RASA_TRACKER_PART}"
    return _RASA_TRACKER_PART


def tracker_key(sender_id: str, key_prefix: Optional[str] = DEFAULT_TRACKER_KEY_PREFIX) -> str:
    """The Redis key of one conversation's tracker (``helder:tracker:<sender_id>``)."""
    return tracker_prefix(key_prefix) + sender_id
