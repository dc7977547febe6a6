"""What every part of the storage shares: the clock and how times are written."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Optional

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, the way browsers and Python both read it."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_timestamp(timestamp: Any) -> Optional[str]:
    """Rasa's Unix timestamps (float seconds) → ISO; ISO strings pass through; else None."""
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        return iso(datetime.fromtimestamp(float(timestamp), timezone.utc))
    if isinstance(timestamp, str) and timestamp:
        return timestamp
    return None


def parse_iso(text: str) -> datetime:
    """Reads what :func:`iso` wrote."""
    return datetime.fromisoformat(text)
