"""How the assistant writes dates and times to customers, in Dutch and English (Amsterdam time).

Dependency-free, so the action server and the handoff service (which tells a customer the
reply-by time of a case it opened itself, handoff/pending.py) word them the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

try:
    from zoneinfo import ZoneInfo

    _AMSTERDAM = ZoneInfo("Europe/Amsterdam")
except Exception:  # pragma: no cover - no tz database: UTC is better than a crash
    _AMSTERDAM = dt.timezone.utc

MONTHS = {
    "nl": "januari februari maart april mei juni juli augustus september oktober november december".split(),
    "en": "January February March April May June July August September October November December".split(),
}
WEEKDAYS = {
    "nl": "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag".split(),
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split(),
}


def format_date(day: Optional[dt.date], lang: str) -> str:
    """"dinsdag 24 november" / "Tuesday 24 November"; an empty string for no date."""
    if day is None:
        return ""
    lang = lang if lang in MONTHS else "nl"
    return f"{WEEKDAYS[lang][day.weekday()]} {day.day} {MONTHS[lang][day.month - 1]}"


def format_fix_time(moment: Optional[dt.datetime], lang: str, now: Optional[dt.datetime] = None) -> str:
    """"vandaag om 16:30" / "today at 16:30" (Amsterdam time); a date further ahead.

    Used for an outage's fix time and for the reply-by time of a handoff promise.
    """
    lang = lang if lang in MONTHS else "nl"
    if moment is None:
        return {"nl": "zo snel mogelijk", "en": "as soon as possible"}[lang]
    local = moment.astimezone(_AMSTERDAM) if moment.tzinfo else moment
    today = (now or dt.datetime.now(_AMSTERDAM)).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return {"nl": f"vandaag om {clock}", "en": f"today at {clock}"}[lang]
    if local.date() == today + dt.timedelta(days=1):
        return {"nl": f"morgen om {clock}", "en": f"tomorrow at {clock}"}[lang]
    return f"{format_date(local.date(), lang)} {'om' if lang == 'nl' else 'at'} {clock}"
