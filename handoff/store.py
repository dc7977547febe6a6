"""Cases, queue, notes, promises, agents, presence, sessions and transcripts in Redis.

Everything the service knows lives here, so several instances behind a load balancer share it.
State changes that could race (opening a case, claiming, handing back, resolving, recording a
transcript line) are Lua scripts: Redis runs each one atomically, so two agents clicking
"claim" at the same moment cannot both win, and a case is never opened twice for a conversation.
"""

from __future__ import annotations

import json
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot.channels.whatsapp_state import last_inbound_at, seconds_left
from handoff import keys
from handoff.models import (
    DEFAULT_ROLE, ROLES, AgentPublic, CaseCreate, CaseCreated, CasePublic, ConversationPublic, NotePublic,
    Promise, TranscriptLine,
)
from handoff.settings import Settings

Clock = Callable[[], datetime]
PRESENCE_TTL_SECONDS = 60
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
OPEN_STATUSES = ("queued", "human")
NOT_RESOLVED = ("queued", "human", "bot")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, the way browsers and Python both read it."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_timestamp(timestamp: Any) -> Optional[str]:
    """Rasa's Unix timestamps (float seconds) → ISO; ISO strings pass through; else None."""
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        return iso(datetime.fromtimestamp(float(timestamp), timezone.utc))
    if isinstance(timestamp, str) and timestamp:
        return timestamp
    return None


def parse_iso(text: str) -> datetime:
    """Reads what :func:`iso` wrote."""
    return datetime.fromisoformat(text)


class StoreError(Exception):
    """A state change the rules do not allow; ``status_code`` says which HTTP answer fits."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


# --- Lua scripts -----------------------------------------------------------------------------------
# Keys are always passed in (built by handoff.keys), never assembled inside a script.

# KEYS: open-case pointer, case hash, queue, cases:queued, cases:human, conversation's cases
# ARGV: case id, created score, initial status, field/value pairs...
_OPEN_CASE = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
if ARGV[3] == 'queued' then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
else
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
end
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
return {1, ARGV[1]}
"""

# KEYS: case hash, queue, cases:queued, cases:human
# ARGV: agent, agent's name, now (ISO), now (score), case id
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status == 'human' then
  if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return {'ok', ''} end
  return {'owned', redis.call('HGET', KEYS[1], 'owner_name') or ''}
end
if status ~= 'queued' then return {'closed', status} end
redis.call('HSET', KEYS[1], 'status', 'human', 'owner', ARGV[1], 'owner_name', ARGV[2],
           'claimed_at', ARGV[3], 'claimed_ts', ARGV[4])
local created = redis.call('HGET', KEYS[1], 'created_ts')
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[4], created, ARGV[5])
return {'ok', ''}
"""

# Moves a case out of queued/human into bot or resolved, only if nothing changed since the caller
# checked (the caller talks to Rasa between its check and this script).
# KEYS: case hash, open-case pointer, queue, cases:queued, cases:human, cases:bot, cases:resolved
# ARGV: case id, expected status, expected owner ('' = any), target status, now (ISO), now (score),
#       outcome
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status ~= ARGV[2] then return {'changed', status} end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then return {'changed', status} end
local created = redis.call('HGET', KEYS[1], 'created_ts')
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'finished_ts', ARGV[6])
if ARGV[4] == 'resolved' then
  redis.call('HSET', KEYS[1], 'resolved_at', ARGV[5], 'outcome', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'handed_back_at', ARGV[5])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZREM', KEYS[3], ARGV[1])
local from = {queued = KEYS[4], human = KEYS[5], bot = KEYS[6], resolved = KEYS[7]}
redis.call('ZREM', from[status], ARGV[1])
redis.call('ZADD', from[ARGV[4]], created, ARGV[1])
return {'ok', status}
"""

# A supervisor takes a claimed case over from its owner, if it is still theirs and still open.
# KEYS: case hash
# ARGV: expected owner, new owner, new owner's name, now (ISO)
_REASSIGN = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status ~= 'human' then return {'closed', status} end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return {'changed', redis.call('HGET', KEYS[1], 'owner_name') or ''}
end
-- claimed_at stays: the customer's wait ended at the first claim.
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'owner_name', ARGV[3], 'taken_over_at', ARGV[4],
           'taken_over_from', ARGV[1])
return {'ok', ''}
"""

# KEYS: agent hash; ARGV: role
_SET_ROLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'role', ARGV[1])
return 1
"""

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


@dataclass(frozen=True)
class Agent:
    """An agent as stored (with the password hash; never sent out)."""

    username: str
    name: str
    password_hash: str
    role: str = DEFAULT_ROLE

    def public(self) -> AgentPublic:
        """Without the password hash."""
        return AgentPublic(username=self.username, name=self.name, role=self.role)


@dataclass(frozen=True)
class Session:
    """A signed-in agent's session."""

    session_id: str
    username: str
    csrf_token: str


class Store:
    """Typed access to the service's Redis data.

    Args:
        redis: a ``redis.asyncio`` client with ``decode_responses=True``.
        settings: for the handling time estimate, opening hours and session length.
        clock: the current time; tests pass a fixed one.
    """

    def __init__(self, redis: Redis, settings: Settings, clock: Clock = utc_now) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.schedule = settings.schedule
        self._open_case = redis.register_script(_OPEN_CASE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._reassign = redis.register_script(_REASSIGN)
        self._record_line = redis.register_script(_RECORD_LINE)

    # --- cases ----------------------------------------------------------------------------------

    async def open_case(
        self, packet: CaseCreate, *, owner: Optional[Agent] = None
    ) -> Tuple[str, bool]:
        """Opens a case for the packet's conversation unless one is open.

        Args:
            packet: the bot's context packet (or one built from the tracker for a takeover).
            owner: set for a takeover: the case starts claimed (``human``) by this agent.

        Returns:
            ``(case_id, created)``: the open case of the conversation, new or existing.
        """
        now = self.clock()
        case_id = f"c_{uuid.uuid4().hex}"
        status = "human" if owner else "queued"
        fields: Dict[str, str] = {
            "id": case_id,
            "conversation_id": packet.conversation_id,
            "status": status,
            "reason": packet.reason,
            "language": packet.language,
            "channel": packet.channel or "",
            "packet": json.dumps(packet.packet(), ensure_ascii=False),
            "created_at": iso(now),
            "created_ts": repr(now.timestamp()),
        }
        if owner:
            fields.update(owner=owner.username, owner_name=owner.name, claimed_at=iso(now),
                          claimed_ts=repr(now.timestamp()))
        elif not await self.available_agents():
            # Nobody to answer: promise a reply time instead of leaving a dead queue.
            fields["promise"] = Promise(
                due_at=iso(self.reply_by(now)), channel=packet.channel
            ).model_dump_json()
        flat = [item for pair in fields.items() for item in pair]
        created, found_id = await self._open_case(
            keys=[keys.open_case(packet.conversation_id), keys.case(case_id), keys.queue(),
                  keys.cases_by_status("queued"), keys.cases_by_status("human"),
                  keys.conversation_cases(packet.conversation_id)],
            args=[case_id, now.timestamp(), status, *flat],
        )
        if int(created):
            await self._remember_conversation(packet.conversation_id, now, packet.language, packet.channel)
        return str(found_id), bool(int(created))

    async def add_identity(self, case_id: str, identity: Dict[str, Any]) -> bool:
        """Adds the identity the bot verified after opening the case to the case's packet.

        Only an open case whose packet has no verified customer yet changes (the first
        identity stands); returns True when it changed. Optimistic: the packet is rewritten only
        if nobody changed it meanwhile.
        """
        if not identity.get("customer_id"):
            return False
        key = keys.case(case_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                status, raw = await pipe.hmget(key, "status", "packet")
                if status not in ("queued", "human") or not raw:
                    return False
                packet = json.loads(raw)
                if (packet.get("identity") or {}).get("customer_id"):
                    return False
                packet["identity"] = identity
                pipe.multi()
                pipe.hset(key, "packet", json.dumps(packet, ensure_ascii=False))
                await pipe.execute()
                return True
            except WatchError:
                return False

    def reply_by(self, now: datetime) -> datetime:
        """When a reply is promised: one hour from now when open, else the next opening + 1 h."""
        start = now if self.schedule.is_open(now) else self.schedule.next_opening(now)
        return start + timedelta(hours=1)

    async def case_created(self, case_id: str) -> CaseCreated:
        """What the bot tells the customer about a queued case."""
        case = await self.get_case(case_id)
        if case.status != "queued":
            # Already claimed (the bot retried after an agent picked the case up): no wait.
            return CaseCreated(case_id=case.id, status="queued", position=None, estimate_minutes=0,
                               reply_by=None, channel=case.channel)
        agents = len(await self.available_agents())
        if agents:
            estimate = math.ceil((case.position or 1) * self.settings.average_handling_minutes / agents)
            return CaseCreated(case_id=case.id, status="queued", position=case.position,
                               estimate_minutes=estimate,
                               reply_by=case.promise.due_at if case.promise else None,
                               channel=case.channel)
        promise = case.promise or await self._add_promise(case)
        return CaseCreated(case_id=case.id, status="no_agents", position=case.position,
                           estimate_minutes=None, reply_by=promise.due_at, channel=case.channel)

    async def _add_promise(self, case: CasePublic) -> Promise:
        """A promise for a case that queued while agents were there and now nobody is."""
        promise = Promise(due_at=iso(self.reply_by(self.clock())), channel=case.channel)
        # HSETNX: if two requests race, both read back the one promise that was stored.
        await self.redis.hsetnx(keys.case(case.id), "promise", promise.model_dump_json())
        stored = await self.redis.hget(keys.case(case.id), "promise")
        return Promise.model_validate_json(stored) if stored else promise

    async def claim(self, case_id: str, agent: Agent) -> None:
        """Makes ``agent`` the owner of a queued case (idempotent for the owner).

        Raises:
            StoreError: 404 unknown case, 409 owned by someone else or no longer open.
        """
        now = self.clock()
        code, info = await self._claim(
            keys=[keys.case(case_id), keys.queue(), keys.cases_by_status("queued"),
                  keys.cases_by_status("human")],
            args=[agent.username, agent.name, iso(now), now.timestamp(), case_id],
        )
        if code == "missing":
            raise StoreError(404, "case not found")
        if code == "owned":
            raise StoreError(409, f"claimed by {info}")
        if code == "closed":
            raise StoreError(409, f"case is {info}")

    async def reassign(self, case_id: str, agent: Agent, *, expected_owner: str) -> None:
        """Makes ``agent`` the owner of a case ``expected_owner`` holds (a supervisor's takeover).

        Raises:
            StoreError: 404 unknown case, 409 no longer open or no longer ``expected_owner``'s.
        """
        now = self.clock()
        code, info = await self._reassign(
            keys=[keys.case(case_id)],
            args=[expected_owner, agent.username, agent.name, iso(now)],
        )
        if code == "missing":
            raise StoreError(404, "case not found")
        if code == "closed":
            raise StoreError(409, f"case is {info}")
        if code == "changed":
            raise StoreError(409, f"the case changed meanwhile (now {info or 'someone else'}'s)")

    async def finish(
        self, case_id: str, *, expected_status: str, expected_owner: Optional[str], target: str,
        outcome: str = "",
    ) -> None:
        """Hands a case back to the bot or resolves it, if it is still as the caller saw it.

        Raises:
            StoreError: 404 unknown case, 409 it changed meanwhile.
        """
        now = self.clock()
        code, info = await self._finish(
            keys=[keys.case(case_id), keys.open_case(await self._conversation_of(case_id)),
                  keys.queue(), *(keys.cases_by_status(s) for s in keys.CASE_STATUSES)],
            args=[case_id, expected_status, expected_owner or "", target, iso(now), now.timestamp(),
                  outcome],
        )
        if code == "missing":
            raise StoreError(404, "case not found")
        if code == "changed":
            raise StoreError(409, f"the case changed meanwhile (now {info})")

    async def _conversation_of(self, case_id: str) -> str:
        conversation_id = await self.redis.hget(keys.case(case_id), "conversation_id")
        if conversation_id is None:
            raise StoreError(404, "case not found")
        return conversation_id

    async def keep_promise(self, case_id: str) -> None:
        """Marks the case's promise kept (the first agent reply keeps a reply promise)."""
        await self.redis.hsetnx(keys.case(case_id), "promise_kept_at", iso(self.clock()))

    async def add_note(self, case_id: str, agent: Agent, text: str) -> NotePublic:
        """Adds a private note to a case.

        Raises:
            StoreError: 404 unknown case.
        """
        if not await self.redis.exists(keys.case(case_id)):
            raise StoreError(404, "case not found")
        note = NotePublic(agent=agent.username, text=text, at=iso(self.clock()))
        await self.redis.rpush(keys.case_notes(case_id), note.model_dump_json())
        return note

    async def get_case(self, case_id: str) -> CasePublic:
        """One case.

        Raises:
            StoreError: 404 unknown case.
        """
        cases = await self._load_cases([case_id])
        if not cases:
            raise StoreError(404, "case not found")
        return cases[0]

    async def find_case(self, case_id: str) -> Optional[CasePublic]:
        """One case, or None."""
        cases = await self._load_cases([case_id])
        return cases[0] if cases else None

    async def open_case_of(self, conversation_id: str) -> Optional[CasePublic]:
        """The conversation's queued or human case, if any."""
        case_id = await self.redis.get(keys.open_case(conversation_id))
        return await self.find_case(case_id) if case_id else None

    async def latest_case_of(self, conversation_id: str) -> Optional[CasePublic]:
        """The conversation's most recent case in any status, if any."""
        newest = await self.redis.zrevrange(keys.conversation_cases(conversation_id), 0, 0)
        return await self.find_case(newest[0]) if newest else None

    async def queue(self) -> List[CasePublic]:
        """Queued cases, oldest first."""
        return await self._load_cases(await self.redis.zrange(keys.queue(), 0, -1))

    async def list_cases(
        self, status: Optional[str] = None, conversation_id: Optional[str] = None, limit: int = 200,
    ) -> List[CasePublic]:
        """Cases in one status (default: every status but resolved).

        Open cases come oldest first (the order they should be handled in); resolved ones newest
        first (the order one looks for them in).
        """
        statuses = (status,) if status else NOT_RESOLVED
        if conversation_id:
            ids = await self.redis.zrevrange(keys.conversation_cases(conversation_id), 0, -1)
        else:
            pipe = self.redis.pipeline(transaction=False)
            for one in statuses:
                if one == "resolved":
                    pipe.zrevrange(keys.cases_by_status(one), 0, limit - 1)
                else:
                    pipe.zrange(keys.cases_by_status(one), 0, -1)
            ids = [case_id for found in await pipe.execute() for case_id in found]
        cases = [c for c in await self._load_cases(ids) if c.status in statuses]
        resolved_last = status == "resolved"
        cases.sort(key=lambda c: c.created_at, reverse=resolved_last)
        return cases[:limit]

    async def _load_cases(self, case_ids: Sequence[str]) -> List[CasePublic]:
        """Cases by id, in the given order, skipping unknown ids."""
        if not case_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for case_id in case_ids:
            pipe.hgetall(keys.case(case_id))
            pipe.lrange(keys.case_notes(case_id), 0, -1)
            pipe.zrank(keys.queue(), case_id)
        results = await pipe.execute()
        now = self.clock()
        cases = []
        for index in range(0, len(results), 3):
            fields, notes, rank = results[index:index + 3]
            if fields:
                cases.append(self._case_from(fields, notes, rank, now))
        for case in cases:
            if case.channel == "whatsapp":
                # The WhatsApp connector keeps the window in the same Redis (bot/channels/whatsapp_state.py).
                last = await last_inbound_at(self.redis, case.conversation_id)
                case.whatsapp_window_seconds_left = seconds_left(last, now.timestamp())
        return cases

    def _case_from(
        self, fields: Dict[str, str], notes: Iterable[str], rank: Optional[int], now: datetime,
    ) -> CasePublic:
        """Builds the public case, with the derived position, waiting time and overdue flag."""
        status = fields["status"]
        created_ts = float(fields["created_ts"])
        # Waiting means waiting for a person: it stops when someone claims or closes the case.
        stopped = fields.get("claimed_ts") or fields.get("finished_ts")
        waited_until = float(stopped) if status != "queued" and stopped else now.timestamp()
        promise = Promise.model_validate_json(fields["promise"]) if fields.get("promise") else None
        if promise and fields.get("promise_kept_at"):
            promise.kept_at = fields["promise_kept_at"]
        overdue = bool(
            promise and not promise.kept_at and status in OPEN_STATUSES
            and now > parse_iso(promise.due_at)
        )
        return CasePublic(
            id=fields["id"],
            conversation_id=fields["conversation_id"],
            status=status,
            owner=fields.get("owner") or None,
            owner_name=fields.get("owner_name") or None,
            reason=fields["reason"],
            language=fields["language"],
            channel=fields.get("channel") or None,
            packet=json.loads(fields["packet"]),
            created_at=fields["created_at"],
            claimed_at=fields.get("claimed_at") or None,
            resolved_at=fields.get("resolved_at") or None,
            outcome=fields.get("outcome") or None,
            position=rank + 1 if status == "queued" and rank is not None else None,
            waiting_seconds=max(0, int(waited_until - created_ts)),
            promise=promise,
            overdue=overdue,
            notes=[NotePublic.model_validate_json(note) for note in notes],
        )

    # --- conversations and transcripts -----------------------------------------------------------

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

    async def _remember_conversation(
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

    # --- agents, presence, sessions -------------------------------------------------------------

    async def save_agent(self, agent: Agent) -> None:
        """Creates or replaces an agent."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.agent(agent.username), mapping={
            "username": agent.username, "name": agent.name, "password_hash": agent.password_hash,
            "role": agent.role,
        })
        pipe.sadd(keys.agents(), agent.username)
        await pipe.execute()

    async def remove_agent(self, username: str) -> bool:
        """Deletes an agent and signs them out of presence; True if they existed."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.agent(username))
        pipe.srem(keys.agents(), username)
        pipe.delete(keys.presence(username))
        deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def get_agent(self, username: str) -> Optional[Agent]:
        """An agent by username, or None."""
        fields = await self.redis.hgetall(keys.agent(username))
        if not fields:
            return None
        # Records from before roles (or with a role this version does not know) are plain agents:
        # an unknown role must never grant more.
        role = fields.get("role")
        return Agent(fields["username"], fields["name"], fields["password_hash"],
                     role if role in ROLES else DEFAULT_ROLE)

    async def set_agent_role(self, username: str, role: str) -> bool:
        """Changes an agent's role (effective on their next request); False if there is no such agent."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        # One script: an agent removed meanwhile must not come back as a hash with only a role.
        return bool(await self.redis.eval(_SET_ROLE, 1, keys.agent(username), role))

    async def list_agents(self) -> List[Agent]:
        """All agents, by username."""
        agents = []
        for username in sorted(await self.redis.smembers(keys.agents())):
            agent = await self.get_agent(username)
            if agent:
                agents.append(agent)
        return agents

    async def set_present(self, username: str) -> None:
        """Marks the agent available for the next minute (the websocket refreshes it)."""
        await self.redis.set(keys.presence(username), "1", ex=PRESENCE_TTL_SECONDS)

    async def set_absent(self, username: str) -> None:
        """The agent's console went away."""
        await self.redis.delete(keys.presence(username))

    async def available_agents(self) -> List[str]:
        """Usernames of agents whose console is open now."""
        usernames = sorted(await self.redis.smembers(keys.agents()))
        if not usernames:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for username in usernames:
            pipe.exists(keys.presence(username))
        return [u for u, present in zip(usernames, await pipe.execute()) if present]

    async def create_session(self, username: str) -> Session:
        """A new server-side session (so logout really ends it) with its CSRF token."""
        session = Session(secrets.token_urlsafe(32), username, secrets.token_urlsafe(32))
        ttl = int(self.settings.session_hours * 3600)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.session(session.session_id),
                  mapping={"agent": username, "csrf": session.csrf_token})
        pipe.expire(keys.session(session.session_id), ttl)
        await pipe.execute()
        return session

    async def get_session(self, session_id: str) -> Optional[Session]:
        """A live session, or None when it expired or was ended."""
        fields = await self.redis.hgetall(keys.session(session_id))
        if not fields:
            return None
        return Session(session_id, fields["agent"], fields["csrf"])

    async def end_session(self, session_id: str) -> None:
        """Logout."""
        await self.redis.delete(keys.session(session_id))

    async def login_failures(self, username: str) -> int:
        """Failed logins for the username in the last 15 minutes."""
        return int(await self.redis.get(keys.login_failures(username)) or 0)

    async def count_login_failure(self, username: str) -> None:
        """Counts a failed login (the window starts at the first failure)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(keys.login_failures(username))
        pipe.expire(keys.login_failures(username), LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
        await pipe.execute()

    async def clear_login_failures(self, username: str) -> None:
        """A successful login resets the count."""
        await self.redis.delete(keys.login_failures(username))
