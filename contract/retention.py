"""How long conversations are kept: ``RETENTION_DAYS``, the same setting in both services.

``RETENTION_DAYS`` (default 30)
    How long transcripts and closed cases are kept: a Rasa tracker expires this many days after
    the conversation's last activity (a Redis expiry, set at every save by the Rasa server's
    tracker store, bot/tracker_store.py); the handoff service deletes transcripts and closed
    cases this many days after the last activity / the closing (handoff/erasure.py). Open cases
    and unkept promises never expire. ``0`` keeps everything (no expiry).
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

RETENTION_ENV = "RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30


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
