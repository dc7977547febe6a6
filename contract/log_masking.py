"""Masks personal data in log output: e-mail addresses, phone numbers, postcodes and IBANs; and
secrets in URLs.

:func:`mask` replaces them in a text with ``[email]``, ``[phone]``, ``[postcode]``, ``[iban]``,
and the value of ``hub.verify_token=``, ``verify_token=``, ``access_token=`` and ``token=`` in a
URL with ``[secret]`` (Sanic's access log, at debug level, writes whole URLs).
:class:`MaskingFilter` is a ``logging.Filter`` that masks each record's message (and the text
of its exception); :func:`install` puts it on every handler that exists at that moment: the root
logger's and those of loggers with handlers of their own (Sanic's, uvicorn's). A handler filter,
not a logger filter, because records of child loggers (``rasa.*``, ``actions.*``) pass the root
logger's handlers but not the root logger's own filters.

Where it is installed: in the Rasa server, the action server and the handoff service, each after
its logging is configured (the handoff service again at start-up: uvicorn configures its loggers
after that). Idempotent.

What is recognised (Dutch, Belgian and UK formats):

- e-mail: ``name@domain.tld``;
- IBAN: two capitals, two check digits, 11 to 30 letters/digits, with or without spaces
  (``NL91ABNA0417164300``, ``NL91 ABNA 0417 1643 00``, ``BE68 5390 0754 7034``);
- phone: international (``+31 6 12345678``, ``0031612345678``, ``+32 470 12 34 56``,
  ``+44 7700 900123``) and national numbers of 9 to 11 digits starting with 0
  (``06-12345678``, ``020 123 4567``, ``0470 12 34 56``, ``07700 900123``);
- postcode: Dutch ``1234 AB`` / ``1234AB`` / ``1234ab``, UK ``SW1A 1AA``, and any 4-digit (Belgian)
  or Dutch postcode right after a word that says it is one (``postcode``, ``postal code``,
  ``code postal``, ``zip``; also Rasa's ``SlotSet(key: postcode, value: 2000)``).

Not masked: customer numbers and order numbers (8/10 digits without a leading 0, needed to follow a
case), WhatsApp ids inside conversation ids and URLs (the digits of a phone without ``+``: they
cannot be told apart from other numbers there), names and street addresses.

Part of the contract package (standard library only), so every service masks the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Optional

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
PHONE = re.compile(
    r"(?<![\w+.])(?:(?:\+|00)[1-9]\d{0,2}[\s.-]?(?:\(0\)[\s.-]?)?\d(?:[\s.-]?\d){6,12}"
    r"|0\d(?:[\s.-]?\d){7,9})(?![\w.]?\d)"
)
POSTCODE_CONTEXT = re.compile(
    r"(?i)(\b(?:post\s?code|postal\s?code|code\s?postal|zip\s?code|zip)\b"
    r"(?:[\s\"':=,]+|\b(?:value|is|was)\b){0,4})"
    r"(?:[1-9]\d{3}(?:\s?[a-z]{2}\b)?|[a-z]{1,2}\d[a-z\d]?\s?\d[a-z]{2})(?!\w)"
)
POSTCODE_NL = re.compile(r"\b[1-9]\d{3}(?: ?[A-Z]{2}|[a-z]{2})\b")
POSTCODE_UK = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")
# Secrets that arrive in a URL's query and would reach an access log with it: Meta's webhook
# handshake (hub.verify_token), a Rasa --auth-token (token=), an access_token.
URL_SECRET = re.compile(r"(?i)\b((?:hub\.verify_token|verify_token|access_token|token)=)[^&\s\"']+")


def mask(text: str) -> str:
    """The text with e-mail addresses, IBANs, postcodes and phone numbers replaced."""
    if not text:
        return text
    text = URL_SECRET.sub(lambda m: m.group(1) + "[secret]", text)
    text = EMAIL.sub("[email]", text)
    text = IBAN.sub("[iban]", text)
    text = POSTCODE_CONTEXT.sub(lambda m: m.group(1) + "[postcode]", text)
    text = POSTCODE_NL.sub("[postcode]", text)
    text = POSTCODE_UK.sub("[postcode]", text)
    return PHONE.sub("[phone]", text)


class MaskingFilter(logging.Filter):
    """Masks the formatted message of every record (and its exception text); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


_FILTER = MaskingFilter()


def _handlers() -> Iterable[logging.Handler]:
    yield from logging.getLogger().handlers
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield from logger.handlers


def install(handler: Optional[logging.Handler] = None) -> int:
    """Adds the masking filter to ``handler``, or to every existing handler; returns how many
    handlers got it now (those that had it already are skipped)."""
    added = 0
    for one in [handler] if handler is not None else list(_handlers()):
        if not any(isinstance(f, MaskingFilter) for f in one.filters):
            one.addFilter(_FILTER)
            added += 1
    return added
