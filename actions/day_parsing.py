"""The day a customer names ("morgen", "next tuesday", "15 december"), in Dutch or English.

Reads the delivery day of an order change (actions/order_change.py); the names of months and
weekdays are the ones the assistant writes (:mod:`contract.dates`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Dict, Optional

from contract.dates import MONTHS, WEEKDAYS

_RELATIVE_DAYS = {"vandaag": 0, "today": 0, "morgen": 1, "tomorrow": 1, "overmorgen": 2}
# Short weekday names that count as a day on their own ("do" and "ma" are common words too).
_SHORT_WEEKDAYS = ("za", "zo", "di", "wo", "vr", "sat", "sun", "mon", "tue", "wed", "thu", "fri")
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
        if word in _WEEKDAY_INDEX and (len(word) > 3 or word in _SHORT_WEEKDAYS):
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
