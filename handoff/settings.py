"""Settings of the handoff service, read from the environment (prefix ``HANDOFF_``).

One :class:`Settings` per deployable, exposed through the cached :func:`get_settings` (tests build
their own ``Settings`` and pass it to ``create_app``). Outside ``HANDOFF_ENV=local`` missing or
placeholder secrets stop the service at start: a console that anyone can sign into with
``change-me`` is worse than one that does not start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "change_me", "secret", "password", "todo", "xxx"}
MIN_SECRET_LENGTH = 16
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OpeningHours:
    """Weekly opening hours in one time zone, e.g. ``mon-fri 08:00-21:00, sat 09:00-17:00``.

    Days that are not listed are closed. Used for promises: when nobody is available the
    customer is promised a reply by the next opening time plus one hour.
    """

    spec: str
    zone: ZoneInfo
    # weekday (0 = Monday) → list of (open, close) local times
    days: Dict[int, Tuple[Tuple[time, time], ...]]

    @classmethod
    def parse(cls, spec: str, zone_name: str = "Europe/Amsterdam") -> OpeningHours:
        """Parses ``"<day>[-<day>] HH:MM-HH:MM, ..."``; raises ``ValueError`` with the bad part."""
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {zone_name!r}") from error
        days: Dict[int, List[Tuple[time, time]]] = {}
        pattern = re.compile(
            r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
            r"(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})$"
        )
        for part in (p.strip().lower() for p in spec.split(",")):
            if not part:
                continue
            match = pattern.match(part)
            if not match or match["first"] not in DAYS or (match["last"] and match["last"] not in DAYS):
                raise ValueError(f"opening hours: cannot read {part!r} (expected e.g. 'mon-fri 08:00-21:00')")
            opens, closes = _clock(match["open"], part), _clock(match["close"], part)
            if closes <= opens:
                raise ValueError(f"opening hours: {part!r} closes before it opens")
            first = DAYS.index(match["first"])
            last = DAYS.index(match["last"] or match["first"])
            span = range(first, last + 1) if last >= first else [*range(first, 7), *range(0, last + 1)]
            for day in span:
                days.setdefault(day, []).append((opens, closes))
        if not days:
            raise ValueError("opening hours: no day is open")
        return cls(spec, zone, {day: tuple(sorted(hours)) for day, hours in days.items()})

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` (aware) falls inside opening hours."""
        local = at.astimezone(self.zone)
        return any(opens <= local.time() < closes for opens, closes in self.days.get(local.weekday(), ()))

    def next_opening(self, after: datetime) -> datetime:
        """The first opening time (UTC) strictly after ``after``."""
        local = after.astimezone(self.zone)
        for offset in range(0, 8):
            day = local.date() + timedelta(days=offset)
            for opens, _ in self.days.get(day.weekday(), ()):
                # Built in local time so the daylight-saving change is handled by zoneinfo.
                candidate = datetime.combine(day, opens, tzinfo=self.zone)
                if candidate > local:
                    return candidate.astimezone(timezone.utc)
        raise AssertionError("a weekly schedule with an open day always opens within 8 days")


def _clock(text: str, part: str) -> time:
    """``"8:00"`` → ``time(8, 0)``; ``ValueError`` naming the part that is wrong."""
    hours, minutes = (int(x) for x in text.split(":"))
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ValueError(f"opening hours: {text!r} in {part!r} is not a time of day")
    return time(hours, minutes)


class Settings(BaseSettings):
    """Everything the service reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="HANDOFF_", extra="ignore")

    env: str = Field(default="production", description="'local' allows placeholder secrets and plain-HTTP cookies")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    redis_url: str = "redis://127.0.0.1:6379/0"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_jwt_secret: SecretStr = SecretStr("")
    rasa_timeout_seconds: float = Field(default=10.0, gt=0)
    api_token: SecretStr = SecretStr("")
    session_secret: SecretStr = SecretStr("")
    session_hours: float = Field(default=12, gt=0)
    cookie_secure: Optional[bool] = Field(
        default=None, description="Secure flag of the session cookie; default: set when the request came over HTTPS")
    average_handling_minutes: float = Field(default=6, gt=0)
    opening_hours: str = "mon-fri 08:00-21:00, sat 09:00-17:00"
    timezone: str = "Europe/Amsterdam"
    max_login_failures: int = Field(default=10, ge=1, description="per username per 15 minutes")
    retention_days: Optional[float] = Field(
        default=None, ge=0, description="days transcripts and closed cases are kept; default RETENTION_DAYS (30); 0 = for ever")
    tracker_key_prefix: str = Field(default="helder", description="endpoints.yml tracker_store.key_prefix (erasure)")
    admins: str = Field(default="", description="comma-separated agent usernames allowed to use /api/admin (erasure)")
    log_dir: Optional[str] = Field(default=None, description="directory of *.log files an erasure also cleans")
    widget_origins: str = Field(default="http://localhost:8080,http://127.0.0.1:8080",
                                description="comma-separated origins of pages that embed the chat widget (CORS of /public)")

    @field_validator("rasa_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        OpeningHours.parse(self.opening_hours, self.timezone)  # fail at start, not at the first case
        if not self.is_local:
            for name in ("rasa_jwt_secret", "api_token", "session_secret"):
                value = getattr(self, name).get_secret_value().strip()
                if value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
                    raise ValueError(
                        f"HANDOFF_{name.upper()} is missing or a placeholder: set a random value of at "
                        f"least {MIN_SECRET_LENGTH} characters (or HANDOFF_ENV=local for development)"
                    )
        return self

    @property
    def is_local(self) -> bool:
        """Development on one's own machine."""
        return self.env.strip().lower() == "local"

    def secure_cookie(self, scheme: str) -> bool:
        """Whether the session cookie gets the Secure flag for a request with this scheme.

        Automatic by default: behind HTTPS (directly, or a proxy on this host sending
        X-Forwarded-Proto) the cookie is HTTPS-only; a plain-HTTP local stack still works, since
        browsers and HTTP clients would not send a Secure cookie back over http://127.0.0.1.
        """
        return self.cookie_secure if self.cookie_secure is not None else scheme in ("https", "wss")

    @property
    def widget_origin_list(self) -> List[str]:
        """``HANDOFF_WIDGET_ORIGINS`` as a list (``scheme://host[:port]``, no trailing slash)."""
        return [origin.strip().rstrip("/") for origin in self.widget_origins.split(",") if origin.strip()]

    @property
    def admin_list(self) -> List[str]:
        """``HANDOFF_ADMINS`` as a list of usernames."""
        return [name.strip() for name in self.admins.split(",") if name.strip()]

    @property
    def schedule(self) -> OpeningHours:
        """The parsed opening hours."""
        return OpeningHours.parse(self.opening_hours, self.timezone)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
