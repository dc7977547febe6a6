"""How the assistant writes dates and times to customers, in Dutch and English (Amsterdam time).

Dependency-free, so the action server and the handoff service (which tells a customer the
wait of a case it opened itself, handoff/pending.py) word them the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, Mapping, Optional

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


def parse_iso(value: Optional[str]) -> Optional[dt.datetime]:
    """An ISO 8601 time as the handoff service writes it ("...Z" too); None for none or garbage."""
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except (TypeError, ValueError):
        return None


def honest_wait(case: Mapping[str, Any], lang: str) -> Dict[str, str]:
    """The response that tells the customer a case's wait, with its values (also slots).

    ``utter_handoff_queued`` with the queue position and estimate, or ``utter_handoff_no_agents``
    with the reply-by time of the promise; ``case`` is the handoff service's answer to opening
    it. Said the same way by ``action_handoff`` and by the service for a case it opens late.
    """
    if case.get("status") == "queued":
        return {"response": "utter_handoff_queued", "queue_position": str(case.get("position") or 1),
                "queue_minutes": str(max(1, int(case.get("estimate_minutes") or 1)))}
    return {"response": "utter_handoff_no_agents", "reply_by": format_fix_time(parse_iso(case.get("reply_by")), lang)}


_RELATIVE_DAYS = {"vandaag": 0, "today": 0, "morgen": 1, "tomorrow": 1, "overmorgen": 2}
_NEXT_WEEK = ("volgende week", "next week", "week erna", "the week after")


def _names(words: Dict[str, list]) -> Dict[str, int]:
    """Every language's names and their 3-letter abbreviations ("zaterdag", "za", "sat") -> index."""
    found: Dict[str, int] = {}
    for names in words.values():
        for index, name in enumerate(names):
            found[name.lower()] = index
            found.setdefault(name.lower()[:3], index)
    found.update({"mrt": 2, "okt": 9, "mei": 4, "ma": 0, "di": 1, "wo": 2, "do": 3, "vr": 4, "za": 5, "zo": 6})
    return found


_MONTH_INDEX = _names(MONTHS)
_WEEKDAY_INDEX = _names(WEEKDAYS)


def parse_day(text: Optional[str], today: dt.date) -> Optional[dt.date]:
    """The day a customer names, in Dutch or English, on or after ``today``; None for none.

    "morgen", "day after tomorrow", "zaterdag", "next tuesday", "volgende week dinsdag",
    "15 december", "december 15th", "15-12", "15/12/2026", "2026-12-15". A day and month without a
    year that has passed this year is next year's. Short weekday names ("za", "di") count only as
    whole words, so "do" in "I do" is read as Thursday only with nothing else naming a day: the
    caller asks back when the value is unusable.
    """
    if not text:
        return None
    lowered = text.lower()
    iso = re.search(r"\b(20\d\d)-(\d{1,2})-(\d{1,2})\b", lowered)
    numeric = re.search(r"\b(\d{1,2})[-/.](\d{1,2})(?:[-/.](\d{2,4}))?\b", lowered)
    named = re.search(r"\b(\d{1,2})(?:st|nd|rd|th|e|ste|de)?\s+(?:of\s+)?([a-z]{3,9})\b", lowered)
    named_us = re.search(r"\b([a-z]{3,9})\s+(\d{1,2})(?:st|nd|rd|th)?\b", lowered)
    try:
        if iso:
            return dt.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if numeric:
            year = numeric.group(3)
            return _this_or_next(today, int(numeric.group(2)), int(numeric.group(1)),
                                 int(year if len(year or "") == 4 else f"20{year}") if year else None)
        for match, day_group, month_group in ((named, 1, 2), (named_us, 2, 1)):
            if match and match.group(month_group) in _MONTH_INDEX and len(match.group(month_group)) >= 3:
                return _this_or_next(today, _MONTH_INDEX[match.group(month_group)] + 1, int(match.group(day_group)))
    except ValueError:
        return None
    if "day after tomorrow" in lowered:
        return today + dt.timedelta(days=2)
    for word in re.findall(r"[a-z]+", lowered):
        if word in _RELATIVE_DAYS:
            return today + dt.timedelta(days=_RELATIVE_DAYS[word])
    for word in re.findall(r"[a-z]+", lowered):
        if word in _WEEKDAY_INDEX and (len(word) > 3 or word in ("za", "zo", "di", "wo", "vr", "sat", "sun", "mon", "tue", "wed", "thu", "fri")):
            ahead = (_WEEKDAY_INDEX[word] - today.weekday()) % 7 or 7
            day = today + dt.timedelta(days=ahead)
            if any(phrase in lowered for phrase in _NEXT_WEEK) and day.isocalendar()[1] == today.isocalendar()[1]:
                day += dt.timedelta(days=7)
            return day
    return None


def _this_or_next(today: dt.date, month: int, day: int, year: Optional[int] = None) -> dt.date:
    found = dt.date(year or today.year, month, day)
    if year is None and found < today:
        found = dt.date(today.year + 1, month, day)
    return found
