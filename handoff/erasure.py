"""Erasure of personal data (AVG/GDPR): by age (the retention sweep over transcripts and closed
cases) and by customer (everything of one customer, on request).

By age: retention (``RETENTION_DAYS``, default 30; ``HANDOFF_RETENTION_DAYS`` overrides it for the service)
    :meth:`Erasure.sweep` deletes

    - closed cases (handed back or resolved) that closed more than N days ago, with their notes
      and packet (which holds a transcript), unless their promise is still unkept;
    - transcripts and conversation summaries whose last activity is more than N days ago, once
      the conversation has no case left and none open;
    - event-stream entries older than N days.

    Open cases and unkept promises never expire (design rule 6: no case disappears while open);
    while a conversation has one, its Rasa tracker's Redis expiry is removed (``PERSIST``; Rasa
    sets it again at the next save, e.g. the resume when the case closes). The Rasa server itself
    expires trackers N days after their last save (``bot/tracker_store.py``). The service sweeps
    once an hour (one instance at a time); ``python -m handoff.erasure sweep`` runs it by hand.

By customer: erasure
    :meth:`Erasure.erase_customer` finds every conversation of a customer (by ``customer_id`` in the
    case packets and in the ``customer_id`` slot of the Rasa trackers, plus WhatsApp conversations by
    phone number) and deletes, in this Redis: the trackers, the cases (also open ones) with notes and
    promises, transcripts, summaries, WhatsApp window/language keys and event-stream entries; and
    replaces the customer number, phone numbers and conversation ids in the log files with
    ``[erased]``. The company backend (SQL) is erased in the bot environment by
    ``python -m scripts.erase_customer``, which also runs this module's erasure (this environment
    has no SQL driver).

Usage::

    python -m handoff.erasure erase --customer 48213377 [--phone +31612345678] [--conversation ID] [--logs var/log]
    python -m handoff.erasure sweep

Only ``HANDOFF_REDIS_URL`` (or ``REDIS_URL``, or ``--redis-url``) is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set

from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract import keys
from contract.keys import DEFAULT_TRACKER_KEY_PREFIX, tracker_key, tracker_prefix
from contract.retention import retention_days
from handoff.insights import Aggregator
from handoff.store import utc_now

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SWEEP_INTERVAL_SECONDS = 3600
ERASED = "[erased]"
CLOSED_STATUSES = ("bot", "resolved")
OPEN_STATUSES = ("queued", "human")
_SCAN_BATCH = 500

# A closed case, if it closed before the cutoff and has no unkept promise (checked atomically:
# an agent could still be adding a note). An id whose hash is gone leaves the indexes.
# KEYS: case hash, notes, cases:bot, cases:resolved, conversation's cases
# ARGV: case id, cutoff (unix seconds)
_EXPIRE_CASE = """
local f = redis.call('HMGET', KEYS[1], 'status', 'finished_ts', 'promise', 'promise_kept_at')
if not f[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 1
end
if f[1] ~= 'bot' and f[1] ~= 'resolved' then return 0 end
if not f[2] or tonumber(f[2]) > tonumber(ARGV[2]) then return 0 end
if f[3] and f[3] ~= '' and not f[4] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""

# A conversation's transcript and summary, if its last activity is before the cutoff and no case
# (open, or kept) is left. A tracker without an expiry of its own (stored before retention
# existed) goes with it; Rasa expires the others itself.
# KEYS: conversations index, open-case pointer, conversation's cases, transcript order,
#       transcript lines, conversation hash, tracker
# ARGV: conversation id, cutoff
_EXPIRE_CONVERSATION = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[7]) == -1 then redis.call('DEL', KEYS[7]) end
return 1
"""


@dataclass
class SweepReport:
    """What one retention sweep deleted or protected."""

    cases: int = 0
    conversations: int = 0
    stream_entries: int = 0
    protected_trackers: int = 0
    insights_entries: int = 0


@dataclass
class ErasureReport:
    """What an erasure found and deleted."""

    customer_id: str
    conversations: List[str] = field(default_factory=list)
    cases: List[str] = field(default_factory=list)
    trackers: int = 0
    stream_entries: int = 0
    insights_entries: int = 0
    log_files: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def phone_conversation_id(phone: str) -> str:
    """The WhatsApp conversation id of a phone number: its digits (``+31 6 1234`` → ``316 1234``)."""
    return re.sub(r"\D", "", phone)


class Erasure:
    """Retention and erasure over the service's Redis (which is also Rasa's tracker store).

    Args:
        redis: ``redis.asyncio`` client, ``decode_responses=True``.
        days: retention in days (0 = keep everything); default ``RETENTION_DAYS``.
        tracker_key_prefix: endpoints.yml ``tracker_store.key_prefix``.
        clock: the current time (tests move it).
    """

    def __init__(self, redis: Redis, *, days: Optional[float] = None,
                 tracker_key_prefix: str = DEFAULT_TRACKER_KEY_PREFIX, clock: Clock = utc_now) -> None:
        self.redis = redis
        self.days = retention_days() if days is None else days
        self.tracker_key_prefix = tracker_key_prefix
        self.clock = clock
        self._expire_case = redis.register_script(_EXPIRE_CASE)
        self._expire_conversation = redis.register_script(_EXPIRE_CONVERSATION)

    def tracker(self, conversation_id: str) -> str:
        """The Rasa tracker key of a conversation."""
        return tracker_key(conversation_id, self.tracker_key_prefix)

    # --- retention ------------------------------------------------------------------------------

    async def sweep(self) -> SweepReport:
        """Deletes what is older than the retention; protects what must stay (see module doc)."""
        report = SweepReport()
        report.protected_trackers = await self._protect_open()
        if self.days <= 0:
            return report
        cutoff = self.clock().timestamp() - self.days * 86400
        for status in CLOSED_STATUSES:
            # Indexed by creation time: a case closes after it was created, so older ones only.
            for case_id in await self.redis.zrangebyscore(keys.cases_by_status(status), "-inf", cutoff):
                conversation_id = await self.redis.hget(keys.case(case_id), "conversation_id") or ""
                report.cases += int(await self._expire_case(
                    keys=[keys.case(case_id), keys.case_notes(case_id), keys.cases_by_status("bot"),
                          keys.cases_by_status("resolved"), keys.conversation_cases(conversation_id)],
                    args=[case_id, cutoff]))
        for conversation_id in await self.redis.zrangebyscore(keys.conversations(), "-inf", cutoff):
            report.conversations += int(await self._expire_conversation(
                keys=[keys.conversations(), keys.open_case(conversation_id),
                      keys.conversation_cases(conversation_id), keys.transcript(conversation_id),
                      keys.transcript_lines(conversation_id), keys.conversation(conversation_id),
                      self.tracker(conversation_id)],
                args=[conversation_id, cutoff]))
        if await self.redis.exists(keys.EVENTS_STREAM):
            report.stream_entries = int(await self.redis.xtrim(
                keys.EVENTS_STREAM, minid=f"{int(cutoff * 1000)}-0", approximate=False))
        report.insights_entries = await Aggregator(self.redis, self.days).sweep_retention(self.clock().timestamp())
        return report

    async def _protect_open(self) -> int:
        """Removes the Redis expiry of the trackers of conversations with an open case or an unkept
        promise, so Rasa's retention cannot take a transcript a person still needs."""
        case_ids: List[str] = []
        for status in (*OPEN_STATUSES, *CLOSED_STATUSES):
            case_ids += await self.redis.zrange(keys.cases_by_status(status), 0, -1)
        if not case_ids:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for case_id in case_ids:
            pipe.hmget(keys.case(case_id), "status", "conversation_id", "promise", "promise_kept_at")
        keep = {conversation for status, conversation, promise, kept in await pipe.execute()
                if conversation and (status in OPEN_STATUSES or (promise and not kept))}
        protected = 0
        for conversation_id in sorted(keep):
            protected += int(await self.redis.persist(self.tracker(conversation_id)))
        return protected

    async def run_periodically(self, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
        """Sweeps every ``interval`` seconds, one instance at a time, until cancelled."""
        while True:
            try:
                if await self.redis.set(keys.retention_lock(), "1", nx=True, ex=max(1, int(interval * 0.9))):
                    report = await self.sweep()
                    if report.cases or report.conversations or report.stream_entries:
                        logger.info("retention: %s", asdict(report))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                logger.warning("retention sweep failed (%s); next try in %d s", type(error).__name__, interval)
            await asyncio.sleep(interval)

    # --- erasure --------------------------------------------------------------------------------

    async def conversations_of(
        self, customer_id: str, phones: Sequence[str] = (), conversations: Sequence[str] = (),
    ) -> Set[str]:
        """Every conversation of the customer: case packets, tracker slots, WhatsApp phones, and
        the given ids (e.g. the conversations of the backend's promises)."""
        found = {phone_conversation_id(p) for p in phones if phone_conversation_id(p)}
        found.update(c for c in conversations if c)
        for case_id in await self._all_case_ids():
            conversation_id, packet = await self.redis.hmget(keys.case(case_id), "conversation_id", "packet")
            if conversation_id and _packet_customer(packet) == customer_id:
                found.add(conversation_id)
        prefix = tracker_prefix(self.tracker_key_prefix)
        async for key in self.redis.scan_iter(match=_glob_escape(prefix) + "*", count=_SCAN_BATCH):
            stored = await self.redis.get(key)
            if stored and customer_id in stored and _tracker_customer(stored, customer_id):
                found.add(key[len(prefix):])
        return found

    async def erase_customer(
        self, customer_id: str, phones: Sequence[str] = (), log_paths: Iterable[Path] = (),
        named_conversations: Sequence[str] = (),
    ) -> ErasureReport:
        """Deletes everything this Redis holds about the customer, and masks them in the logs."""
        customer_id = customer_id.strip()
        if not customer_id:
            raise ValueError("a customer number is needed")
        report = ErasureReport(customer_id)
        conversations = await self.conversations_of(customer_id, phones, named_conversations)
        report.conversations = sorted(conversations)
        case_ids: Set[str] = set()
        for case_id in await self._all_case_ids():
            conversation_id, packet = await self.redis.hmget(keys.case(case_id), "conversation_id", "packet")
            if conversation_id in conversations or (packet and _packet_customer(packet) == customer_id):
                case_ids.add(case_id)
        for conversation_id in conversations:
            case_ids.update(await self.redis.zrange(keys.conversation_cases(conversation_id), 0, -1))
        report.cases = sorted(case_ids)

        pipe = self.redis.pipeline(transaction=True)
        for case_id in case_ids:
            pipe.delete(keys.case(case_id), keys.case_notes(case_id))
            pipe.zrem(keys.queue(), case_id)
            for status in keys.CASE_STATUSES:
                pipe.zrem(keys.cases_by_status(status), case_id)
        tracker_positions = []
        for conversation_id in conversations:
            pipe.delete(keys.open_case(conversation_id), keys.conversation_cases(conversation_id),
                        keys.transcript(conversation_id), keys.transcript_lines(conversation_id),
                        keys.conversation(conversation_id), keys.whatsapp_window(conversation_id),
                        keys.whatsapp_language(conversation_id), keys.whatsapp_template(conversation_id))
            pipe.zrem(keys.conversations(), conversation_id)
            pipe.hdel(keys.pending_requests(), conversation_id)
            tracker_positions.append(len(pipe))
            pipe.delete(self.tracker(conversation_id))
        results = await pipe.execute()
        report.trackers = sum(int(results[i]) for i in tracker_positions)
        report.stream_entries = await self._erase_stream(conversations)
        # Their snippets, repeat contacts and contact index (the counters hold no personal data).
        report.insights_entries = await Aggregator(self.redis).erase(customer_id, conversations)
        phone_forms = [form for p in phones for form in (p, phone_conversation_id(p), "+" + phone_conversation_id(p))]
        needles = [customer_id, *phone_forms, *(c for c in conversations if len(c) >= 8)]
        report.log_files = [str(p) for p in erase_from_logs(log_paths, needles)]
        return report

    async def _erase_stream(self, conversations: Set[str]) -> int:
        """Deletes the event-stream entries of these conversations."""
        if not conversations or not await self.redis.exists(keys.EVENTS_STREAM):
            return 0
        deleted, start = 0, "-"
        while True:
            entries = await self.redis.xrange(keys.EVENTS_STREAM, min=start, max="+", count=_SCAN_BATCH)
            if not entries:
                return deleted
            ids = [entry_id for entry_id, fields in entries if fields.get("sender_id") in conversations]
            if ids:
                deleted += int(await self.redis.xdel(keys.EVENTS_STREAM, *ids))
            start = "(" + entries[-1][0]
            if len(entries) < _SCAN_BATCH:
                return deleted

    async def _all_case_ids(self) -> List[str]:
        ids: List[str] = []
        for status in keys.CASE_STATUSES:
            ids += await self.redis.zrange(keys.cases_by_status(status), 0, -1)
        return list(dict.fromkeys(ids))


def _packet_customer(packet: Optional[str]) -> Optional[str]:
    try:
        identity = (json.loads(packet or "{}") or {}).get("identity") or {}
    except (ValueError, AttributeError):
        return None
    value = identity.get("customer_id") if isinstance(identity, dict) else None
    return str(value) if value is not None else None


def _tracker_customer(stored: str, customer_id: str) -> bool:
    """True when the stored tracker ever set the slot ``customer_id`` to this customer."""
    try:
        events = json.loads(stored).get("events") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, dict) and e.get("event") == "slot" and e.get("name") == "customer_id"
               and str(e.get("value")) == customer_id for e in events)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def erase_from_logs(paths: Iterable[Path], needles: Sequence[str]) -> List[Path]:
    """Replaces every needle with ``[erased]`` in these log files (or the ``*.log`` files of these
    directories), in place: the processes appending to them keep their file. Returns the files
    that changed."""
    needles = sorted({n for n in needles if n and len(n.strip()) >= 4}, key=len, reverse=True)
    if not needles:
        return []
    pattern = re.compile("|".join(re.escape(n) for n in needles).encode())
    changed: List[Path] = []
    for path in paths:
        path = Path(path)
        files = sorted(path.glob("*.log")) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            with open(file, "r+b") as handle:
                data = handle.read()
                cleaned = pattern.sub(ERASED.encode(), data)
                if cleaned != data:
                    handle.seek(0)
                    handle.write(cleaned)
                    handle.truncate()
                    changed.append(file)
    return changed


# --- command line ---------------------------------------------------------------------------------

DEFAULT_LOG_DIR = Path(__file__).resolve().parents[1] / "var" / "log"


async def _main(args: argparse.Namespace) -> int:
    redis = Redis.from_url(args.redis_url, decode_responses=True)
    try:
        erasure = Erasure(redis, tracker_key_prefix=args.tracker_key_prefix)
        if args.command == "sweep":
            print(json.dumps(asdict(await erasure.sweep())))
        else:
            logs = [Path(p) for p in args.logs] if args.logs else [DEFAULT_LOG_DIR]
            report = await erasure.erase_customer(args.customer, args.phone or (), logs, args.conversation or ())
            print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    except (RedisError, OSError) as error:
        print(f"handoff.erasure: Redis at {args.redis_url} failed: {error}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff.erasure", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("HANDOFF_REDIS_URL") or os.environ.get("REDIS_URL")
                        or "redis://127.0.0.1:6379/0")
    parser.add_argument("--tracker-key-prefix", default=os.environ.get("HANDOFF_TRACKER_KEY_PREFIX",
                                                                       DEFAULT_TRACKER_KEY_PREFIX))
    commands = parser.add_subparsers(dest="command", required=True)
    erase = commands.add_parser("erase", help="erase one customer's data (trackers, cases, transcripts, logs)")
    erase.add_argument("--customer", required=True, help="the customer number (slot customer_id)")
    erase.add_argument("--phone", action="append", help="a phone number (WhatsApp conversation); repeatable")
    erase.add_argument("--conversation", action="append", help="a conversation id known to be theirs; repeatable")
    erase.add_argument("--logs", action="append", help=f"log file or directory (default {DEFAULT_LOG_DIR})")
    commands.add_parser("sweep", help="delete what is older than RETENTION_DAYS now")
    args = parser.parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
