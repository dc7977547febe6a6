"""Conversations (the live list and each one's summary) and their transcripts.

Transcript lines arrive from the event stream (handoff/consumer.py) and from agents' messages;
each is recorded once per key by a Lua script, which also moves the conversation's summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, List, Optional, Sequence, Tuple

from redis.asyncio import Redis

from contract import keys
from handoff.models import ConversationPublic, TranscriptLine

OPEN_STATUSES = ("queued", "human")

# A transcript line, once per key (the stream may deliver an event twice, and the service records
# an agent's line itself before the broker echoes it); the conversation's summary follows the
# newest line.
# KEYS: transcript order, transcript lines, conversation hash, conversations index
# ARGV: line key, score, line JSON, text, at (ISO), conversation id
_RECORD_LINE = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[3], 'last_ts') or '0')
if tonumber(ARGV[2]) >= last then
  redis.call('HSET', KEYS[3], 'last_text', ARGV[4], 'last_at', ARGV[5], 'last_ts', ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[6])
end
return 1
"""


class ConversationStore:
    """Conversations and transcripts in Redis.

    Args:
        redis: a ``redis.asyncio`` client with ``decode_responses=True``.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._record_line = redis.register_script(_RECORD_LINE)

    async def record_line(
        self, conversation_id: str, line_key: str, line: TranscriptLine, timestamp: float,
    ) -> bool:
        """Appends a transcript line once per ``line_key``; True when it is new."""
        payload = line.model_dump_json(by_alias=True)
        added = await self._record_line(
            keys=[keys.transcript(conversation_id), keys.transcript_lines(conversation_id),
                  keys.conversation(conversation_id), keys.conversations()],
            args=[line_key, timestamp, payload, line.text, line.at or "", conversation_id],
        )
        return bool(int(added))

    async def transcript(self, conversation_id: str, limit: int = 5000) -> List[TranscriptLine]:
        """A conversation's lines, oldest first (the last ``limit``)."""
        line_keys = await self.redis.zrange(keys.transcript(conversation_id), -limit, -1)
        if not line_keys:
            return []
        lines = await self.redis.hmget(keys.transcript_lines(conversation_id), line_keys)
        return [TranscriptLine.model_validate_json(line) for line in lines if line]

    async def touch_conversation(
        self, conversation_id: str, timestamp: float, *, language: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> bool:
        """Registers a conversation seen on the stream; True when it was not known before."""
        pipe = self.redis.pipeline(transaction=True)
        # NX: a non-text event (action, slot) registers the conversation but is not "activity".
        pipe.zadd(keys.conversations(), {conversation_id: timestamp}, nx=True)
        updates = {k: v for k, v in (("language", language), ("channel", channel)) if v}
        if updates:
            pipe.hset(keys.conversation(conversation_id), mapping=updates)
        added = (await pipe.execute())[0]
        return bool(added)

    async def record_events(
        self, touches: Sequence[Tuple[str, float, Optional[str], Optional[str]]],
        lines: Sequence[Tuple[str, str, TranscriptLine, float]], read: Sequence[str] = (),
    ) -> Tuple[List[bool], List[bool], List[ConversationPublic]]:
        """Many :meth:`touch_conversation` and :meth:`record_line` calls, then :meth:`conversations`
        of ``read``, in one transaction (one round trip, or two when a read conversation has a case).

        The event consumer's batch: every touch ``(conversation_id, timestamp, language,
        channel)`` first, then every line ``(conversation_id, line_key, line, timestamp)`` in the
        given order, each with the same effect as the single call; Redis runs them all or none.
        The summaries are read after the writes, in the same transaction.

        Returns:
            ``(new, added, summaries)``: per touch, True when the conversation was not known
            before; per line, True when it is new; the summaries of the known ``read`` ones.
        """
        pipe = self.redis.pipeline(transaction=True)
        positions = []
        for conversation_id, timestamp, language, channel in touches:
            positions.append(len(pipe))
            pipe.zadd(keys.conversations(), {conversation_id: timestamp}, nx=True)
            updates = {k: v for k, v in (("language", language), ("channel", channel)) if v}
            if updates:
                pipe.hset(keys.conversation(conversation_id), mapping=updates)
        first_line = len(pipe)
        for conversation_id, line_key, line, timestamp in lines:
            # EVAL, not EVALSHA: a script missing from Redis' cache (after a restart) cannot fail
            # one command in the middle of the transaction, and no SCRIPT EXISTS round trip.
            pipe.eval(_RECORD_LINE, 4, keys.transcript(conversation_id), keys.transcript_lines(conversation_id),
                      keys.conversation(conversation_id), keys.conversations(), line_key, timestamp,
                      line.model_dump_json(by_alias=True), line.text, line.at or "", conversation_id)
        first_read = len(pipe)
        self._queue_summary_reads(pipe, read, check_known=True)
        if not len(pipe):
            return [], [], []
        results = await pipe.execute()
        summaries = await self._summaries_from(read, results[first_read:], check_known=True)
        return ([bool(results[index]) for index in positions],
                [bool(int(added)) for added in results[first_line:first_read]], summaries)

    async def remember(
        self, conversation_id: str, now: datetime, language: Optional[str], channel: Optional[str],
    ) -> None:
        """A case may arrive before (or without) the conversation's events: list it anyway."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(keys.conversations(), {conversation_id: now.timestamp()}, nx=True)
        if language:
            pipe.hsetnx(keys.conversation(conversation_id), "language", language)
        if channel:
            pipe.hsetnx(keys.conversation(conversation_id), "channel", channel)
        await pipe.execute()

    async def conversation_known(self, conversation_id: str) -> bool:
        """True when the service has seen the conversation (stream or case)."""
        return await self.redis.zscore(keys.conversations(), conversation_id) is not None

    async def conversation(self, conversation_id: str) -> Optional[ConversationPublic]:
        """One conversation's summary, or None when unknown."""
        found = await self.conversations([conversation_id])
        return found[0] if found else None

    async def conversations(
        self, conversation_ids: Optional[Sequence[str]] = None, limit: int = 200,
    ) -> List[ConversationPublic]:
        """Live conversations, newest activity first (or the given ones)."""
        check_known = conversation_ids is not None
        if conversation_ids is None:
            conversation_ids = await self.redis.zrevrange(keys.conversations(), 0, limit - 1)
        if not conversation_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        self._queue_summary_reads(pipe, conversation_ids, check_known=check_known)
        return await self._summaries_from(conversation_ids, await pipe.execute(), check_known=check_known)

    def _queue_summary_reads(self, pipe: Any, conversation_ids: Sequence[str], *, check_known: bool) -> None:
        """Queues what :meth:`_summaries_from` needs (with ``check_known``: whether each is known)."""
        for conversation_id in conversation_ids:
            if check_known:
                pipe.zscore(keys.conversations(), conversation_id)
            pipe.hgetall(keys.conversation(conversation_id))
            pipe.get(keys.open_case(conversation_id))
            pipe.zrevrange(keys.conversation_cases(conversation_id), 0, 0)

    async def _summaries_from(
        self, conversation_ids: Sequence[str], results: Sequence[Any], *, check_known: bool,
    ) -> List[ConversationPublic]:
        """The summaries of the known conversations among ``conversation_ids``, in that order,
        from the replies to :meth:`_queue_summary_reads`; reads the case statuses if any."""
        step = 4 if check_known else 3
        found = []
        for index, conversation_id in enumerate(conversation_ids):
            replies = results[index * step:(index + 1) * step]
            if check_known:
                if replies[0] is None:
                    continue
                replies = replies[1:]
            meta, open_case_id, newest = replies
            found.append((conversation_id, meta, open_case_id or (newest or [None])[0]))
        if not found:
            return []
        case_fields: List[Any] = [(None, None)] * len(found)
        if any(case_id for _, _, case_id in found):
            pipe = self.redis.pipeline(transaction=False)
            for _, _, case_id in found:
                pipe.hmget(keys.case(case_id or "-"), "status", "owner_name")
            case_fields = await pipe.execute()
        summaries = []
        for (conversation_id, meta, case_id), (status, owner_name) in zip(found, case_fields):
            case_id = case_id if status else None
            by_agent = status in OPEN_STATUSES
            summaries.append(ConversationPublic(
                conversation_id=conversation_id,
                last_text=meta.get("last_text"),
                last_at=meta.get("last_at") or None,
                owner="agent" if by_agent else "bot",
                owner_name=owner_name or None if status == "human" else None,
                case_id=case_id,
                case_status=status,
                language=meta.get("language"),
                channel=meta.get("channel"),
            ))
        return summaries
