"""Exits 0 when a Redis answers at REDIS_URL (default redis://127.0.0.1:6379/0)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.stack import DEFAULT_REDIS_URL, redis_ping  # noqa: E402

sys.exit(0 if redis_ping(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)) else 1)
