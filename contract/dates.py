"""How the assistant writes dates, times and the honest wait to customers, in Dutch and English
(Amsterdam time).

In the contract because the action server and the handoff service (which tells a customer the
wait of a case it opened itself, handoff/pending.py) must word them the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Mapping, Optional

_AMSTERDAM: dt.tzinfo
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
