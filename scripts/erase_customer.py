"""Erases one customer everywhere (AVG/GDPR right to erasure). Runs with the bot environment.

    .venv/bin/python -m scripts.erase_customer --customer 48213377

1. Reads from the backend what links the customer to conversations: their phone number (the
   WhatsApp conversation id) and the conversations of their promises.
2. Runs the handoff service's erasure (``handoff/erasure.py``, in ``.venv-handoff``): Rasa trackers,
   cases, notes, promises, transcripts, WhatsApp keys and event-stream entries in Redis, and the
   customer's number, phone and conversation ids in the log files (``var/log`` by default).
3. Deletes the customer's records from the backend (``CustomerBackend.erase_customer``).

Redis first: if it fails the backend still has what is needed to run the command again.
Prints one JSON report. Settings: ``REDIS_URL`` (or ``HANDOFF_REDIS_URL``), ``KLANTCONTACT_DB_URL`` /
``KLANTCONTACT_BACKEND`` as for the action server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
HANDOFF_PYTHON = ROOT / ".venv-handoff" / "bin" / "python"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def erase(customer_id: str, *, redis_url: str, logs: Sequence[str], phones: Sequence[str] = (),
          handoff_python: Path = HANDOFF_PYTHON) -> Dict[str, Any]:
    """The three steps of the module doc; raises ``RuntimeError`` when the Redis step fails."""
    from actions.backend import get_backend

    backend = get_backend()
    customer = backend.get_customer(customer_id)
    phones = [*phones, *([customer.phone] if customer and customer.phone else [])]
    conversations = sorted({p.conversation_id for p in backend.promises(customer_id) if p.conversation_id}) \
        if customer else []
    command: List[str] = [str(handoff_python), "-m", "handoff.erasure", "--redis-url", redis_url, "erase",
                          "--customer", customer_id]
    for phone in phones:
        command += ["--phone", phone]
    for conversation in conversations:
        command += ["--conversation", conversation]
    for log in logs:
        command += ["--logs", log]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"the handoff erasure failed ({result.returncode}): {result.stderr.strip()}")
    report: Dict[str, Any] = {"redis": json.loads(result.stdout.strip().splitlines()[-1])}
    report["backend"] = backend.erase_customer(customer_id)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.erase_customer", description=__doc__.split("\n")[0])
    parser.add_argument("--customer", required=True, help="the customer number")
    parser.add_argument("--phone", action="append", default=[], help="another phone number of theirs; repeatable")
    parser.add_argument("--redis-url", default=os.environ.get("HANDOFF_REDIS_URL") or os.environ.get("REDIS_URL")
                        or DEFAULT_REDIS_URL)
    parser.add_argument("--logs", action="append", help="log file or directory (default var/log)")
    args = parser.parse_args(argv)
    customer_id = args.customer.strip()
    if not customer_id:
        parser.error("--customer is empty")
    try:
        report = erase(customer_id, redis_url=args.redis_url, logs=args.logs or [str(ROOT / "var" / "log")],
                       phones=args.phone)
    except Exception as error:  # one line for the operator, not a traceback
        print(f"erase_customer: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
