"""The assistant's replies as WhatsApp Cloud API message objects.

Pure functions, no I/O. Text over 4096 characters is split at paragraph, then sentence, then
word boundaries; up to three buttons become an interactive "button" message, more a "list" (one
section, at most ten rows). Titles are shortened to WhatsApp's limits at a word, repeats numbered.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Set, Tuple

logger = logging.getLogger(__name__)

# WhatsApp Cloud API limits.
MAX_TEXT_CHARS = 4096
MAX_INTERACTIVE_BODY_CHARS = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE_CHARS = 20
MAX_BUTTON_ID_CHARS = 256
MAX_LIST_ROWS = 10
MAX_ROW_TITLE_CHARS = 24
MAX_ROW_DESCRIPTION_CHARS = 72
MAX_ROW_ID_CHARS = 200
MAX_LIST_BUTTON_CHARS = 20

_SENTENCE_END = re.compile(r"[.!?…][\"'”»)\]]*\s")


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the first piece has at most ``limit`` characters."""
    window = text[: limit + 1]
    floor = limit // 4  # never cut off a sliver when a rougher cut keeps pieces balanced
    paragraph = window.rfind("\n\n", 0, limit)
    if paragraph >= floor:
        return paragraph
    sentences = [m.end() - 1 for m in _SENTENCE_END.finditer(window) if m.end() - 1 <= limit]
    if sentences and sentences[-1] >= floor:
        return sentences[-1]
    for separator in ("\n", " "):
        position = window.rfind(separator, 0, limit)
        if position >= floor:
            return position
    return limit


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> List[str]:
    """Splits a long text into messages of at most ``limit`` characters.

    Cuts at a paragraph break if one is in reach, else after a sentence, else at a line break
    or a space, and only as a last resort inside a word.
    """
    rest = (text or "").strip()
    pieces: List[str] = []
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def split_tail(text: str, limit: int) -> Tuple[str, str]:
    """(head, tail): ``tail`` is the last piece of ``text`` of at most ``limit`` characters."""
    text = (text or "").strip()
    if len(text) <= limit:
        return "", text
    tail = split_text(text, limit)[-1]
    return text[: text.rfind(tail)].rstrip(), tail


def shorten(title: str, limit: int) -> str:
    """Fits a title into ``limit`` characters, at a word boundary where possible, with "…"."""
    title = " ".join(str(title or "").split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–") + "…"


def _unique(titles: List[str], limit: int) -> List[str]:
    """WhatsApp refuses two buttons (or rows) with the same title: number the repeats."""
    seen: Set[str] = set()
    result = []
    for title in titles:
        candidate, number = title, 2
        while candidate in seen:
            suffix = f" {number}"
            candidate = shorten(title, limit - len(suffix)) + suffix
            number += 1
        seen.add(candidate)
        result.append(candidate)
    return result


def _button_id(button: Dict[str, Any], limit: int) -> str:
    """What comes back when the customer taps: the Rasa payload ("/affirm"), else the title."""
    payload = str(button.get("payload") or "").strip()
    title = str(button.get("title") or "").strip()
    if payload and len(payload) <= limit:
        return payload
    return (title or payload)[:limit]


def text_message(body: str) -> Dict[str, Any]:
    """A plain text message (no link preview)."""
    return {"type": "text", "text": {"preview_url": False, "body": body}}


def reply_buttons_message(body: str, buttons: List[Dict[str, Any]]) -> Dict[str, Any]:
    """An interactive "button" message (at most three reply buttons)."""
    titles = _unique([shorten(b.get("title") or b.get("payload") or "", MAX_BUTTON_TITLE_CHARS)
                      for b in buttons[:MAX_REPLY_BUTTONS]], MAX_BUTTON_TITLE_CHARS)
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": _button_id(button, MAX_BUTTON_ID_CHARS), "title": title}}
                    for button, title in zip(buttons, titles)
                ]
            },
        },
    }


def list_message(body: str, buttons: List[Dict[str, Any]], list_button: str) -> Dict[str, Any]:
    """An interactive "list" message: one section, at most ten rows.

    A title too long for a row (24 characters) is shortened, and shown in full as the row's
    description.
    """
    if len(buttons) > MAX_LIST_ROWS:
        logger.warning("whatsapp: %d buttons, a list shows %d; the rest are left out", len(buttons), MAX_LIST_ROWS)
        buttons = buttons[:MAX_LIST_ROWS]
    full_titles = [" ".join(str(b.get("title") or b.get("payload") or "").split()) for b in buttons]
    titles = _unique([shorten(t, MAX_ROW_TITLE_CHARS) for t in full_titles], MAX_ROW_TITLE_CHARS)
    rows = []
    for button, title, full in zip(buttons, titles, full_titles):
        row: Dict[str, Any] = {"id": _button_id(button, MAX_ROW_ID_CHARS), "title": title}
        if full != title:
            row["description"] = shorten(full, MAX_ROW_DESCRIPTION_CHARS)
        rows.append(row)
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": body},
            "action": {"button": shorten(list_button, MAX_LIST_BUTTON_CHARS), "sections": [{"rows": rows}]},
        },
    }
