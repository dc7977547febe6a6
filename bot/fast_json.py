"""JSON text of the Rasa server's larger payloads, written by ujson where it can.

Every custom action call sends the whole conversation to the action server as JSON (aiohttp's
``json=``, which calls ``json.dumps``), and every save writes it to Redis again: under load the
standard library's encoder was about a tenth of the Rasa server's busy time (py-spy,
docs/benchmarks.md). ujson (already installed with Sanic, pinned in requirements/bot.txt) writes
the same JSON about 2.4 times as fast (a 12 kB conversation: 161 → 66 µs on this project's
machine). Its output parses to the same values; it differs from ``json.dumps`` only in spacing
and in the digits of some floats, which parse back to the same float.

What ujson refuses and the standard library writes (integers beyond 64 bits, NaN and infinity)
and any other error goes to ``json.dumps``, so nothing is written differently from before that
ujson cannot write, and an object neither can write raises ``json.dumps``'s ``TypeError``.
"""

from __future__ import annotations

import json
from typing import Any

import ujson


def dumps(obj: Any) -> str:
    """``json.dumps(obj)``, written by ujson where it can (see the module docstring)."""
    try:
        return ujson.dumps(obj, ensure_ascii=True, escape_forward_slashes=False, allow_nan=False)
    except (OverflowError, TypeError, ValueError):
        return json.dumps(obj)
