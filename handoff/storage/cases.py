"""Cases: opening, claiming, taking over, finishing; the queue, reply promises and notes.

State changes that could race (opening a case, claiming, taking over, handing back, resolving)
are Lua scripts: Redis runs each one atomically, so two agents clicking "claim" at the same
moment cannot both win, and a case is never opened twice for a conversation. Refusals are
:mod:`handoff.errors` (:class:`CaseNotFound`, :class:`Conflict`), never HTTP answers.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from contract import channels, keys
from contract.whatsapp_window import last_inbound_at, seconds_left
from handoff.errors import CaseNotFound, Conflict
from handoff.models import CaseCreate, CaseCreated, CasePublic, CaseStatus, NotePublic, Promise
from handoff.settings import Settings
from handoff.storage.agents import Agent, AgentStore
from handoff.storage.common import Clock, iso, parse_iso, utc_now
from handoff.storage.conversations import ConversationStore

OPEN_STATUSES = ("queued", "human")
NOT_RESOLVED = ("queued", "human", "bot")

# --- Lua scripts -----------------------------------------------------------------------------------
# Keys are always passed in (built by contract.keys), never assembled inside a script.

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

# Undoes a claim (the takeover could not pause Rasa): the case is queued again, where it was, if
# it is still this agent's.
# KEYS: case hash, queue, cases:queued, cases:human
# ARGV: agent, case id
_RELEASE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status ~= 'human' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return {'changed', status} end
local created = redis.call('HGET', KEYS[1], 'created_ts')
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'owner', 'owner_name', 'claimed_at', 'claimed_ts')
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[2], created, ARGV[2])
redis.call('ZADD', KEYS[3], created, ARGV[2])
return {'ok', ''}
"""

# Removes a case a takeover opened a moment ago and could not complete (Rasa was not paused, so
# the conversation never left the bot), if it is still this agent's.
# KEYS: case hash, case notes, open-case pointer, cases:human, conversation's cases
# ARGV: agent, case id
_DISCARD = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status ~= 'human' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return {'changed', status} end
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return {'ok', ''}
"""


class CaseStore:
    """Cases, the queue, promises and notes in Redis.

    Args:
        redis: a ``redis.asyncio`` client with ``decode_responses=True``.
        settings: for the handling time estimate and opening hours.
        agents: who is available (a case opened while nobody is gets a reply promise).
        conversations: a new case lists its conversation.
        clock: the current time; tests pass a fixed one.
    """

    def __init__(self, redis: Redis, settings: Settings, agents: AgentStore, conversations: ConversationStore,
                 clock: Clock = utc_now) -> None:
        self.redis = redis
        self.settings = settings
        self.schedule = settings.schedule
        self.agents = agents
        self.conversations = conversations
        self.clock = clock
        self._open_case = redis.register_script(_OPEN_CASE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._reassign = redis.register_script(_REASSIGN)
        self._release = redis.register_script(_RELEASE)
        self._discard = redis.register_script(_DISCARD)

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
        elif not await self.agents.available_agents():
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
            await self.conversations.remember(packet.conversation_id, now, packet.language, packet.channel)
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
        agents = len(await self.agents.available_agents())
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
            CaseNotFound: unknown case. Conflict: owned by someone else or no longer open.
        """
        now = self.clock()
        code, info = await self._claim(
            keys=[keys.case(case_id), keys.queue(), keys.cases_by_status("queued"),
                  keys.cases_by_status("human")],
            args=[agent.username, agent.name, iso(now), now.timestamp(), case_id],
        )
        if code == "missing":
            raise CaseNotFound()
        if code == "owned":
            raise Conflict(f"claimed by {info}")
        if code == "closed":
            raise Conflict(f"case is {info}")

    async def reassign(self, case_id: str, agent: Agent, *, expected_owner: str) -> None:
        """Makes ``agent`` the owner of a case ``expected_owner`` holds (a supervisor's takeover).

        Raises:
            CaseNotFound: unknown case. Conflict: no longer open or no longer ``expected_owner``'s.
        """
        now = self.clock()
        code, info = await self._reassign(
            keys=[keys.case(case_id)],
            args=[expected_owner, agent.username, agent.name, iso(now)],
        )
        if code == "missing":
            raise CaseNotFound()
        if code == "closed":
            raise Conflict(f"case is {info}")
        if code == "changed":
            raise Conflict(f"the case changed meanwhile (now {info or 'someone else'}'s)")

    async def release(self, case_id: str, agent: Agent) -> None:
        """Undoes ``agent``'s claim: the case is queued again at its old place.

        Raises:
            CaseNotFound: unknown case. Conflict: no longer ``agent``'s claimed case.
        """
        code, info = await self._release(
            keys=[keys.case(case_id), keys.queue(), keys.cases_by_status("queued"),
                  keys.cases_by_status("human")],
            args=[agent.username, case_id],
        )
        if code == "missing":
            raise CaseNotFound()
        if code == "changed":
            raise Conflict(f"the case changed meanwhile (now {info})")

    async def discard(self, case_id: str, agent: Agent) -> None:
        """Removes a case ``agent``'s takeover just opened (the takeover did not happen).

        Raises:
            CaseNotFound: unknown case. Conflict: no longer ``agent``'s claimed case.
        """
        conversation_id = await self._conversation_of(case_id)
        code, info = await self._discard(
            keys=[keys.case(case_id), keys.case_notes(case_id), keys.open_case(conversation_id),
                  keys.cases_by_status("human"), keys.conversation_cases(conversation_id)],
            args=[agent.username, case_id],
        )
        if code == "missing":
            raise CaseNotFound()
        if code == "changed":
            raise Conflict(f"the case changed meanwhile (now {info})")

    async def finish(
        self, case_id: str, *, expected_status: str, expected_owner: Optional[str], target: str,
        outcome: str = "",
    ) -> None:
        """Hands a case back to the bot or resolves it, if it is still as the caller saw it.

        Raises:
            CaseNotFound: unknown case. Conflict: it changed meanwhile.
        """
        now = self.clock()
        code, info = await self._finish(
            keys=[keys.case(case_id), keys.open_case(await self._conversation_of(case_id)),
                  keys.queue(), *(keys.cases_by_status(s) for s in keys.CASE_STATUSES)],
            args=[case_id, expected_status, expected_owner or "", target, iso(now), now.timestamp(),
                  outcome],
        )
        if code == "missing":
            raise CaseNotFound()
        if code == "changed":
            raise Conflict(f"the case changed meanwhile (now {info})")

    async def _conversation_of(self, case_id: str) -> str:
        conversation_id = await self.redis.hget(keys.case(case_id), "conversation_id")
        if conversation_id is None:
            raise CaseNotFound()
        return conversation_id

    async def keep_promise(self, case_id: str) -> None:
        """Marks the case's promise kept (the first agent reply keeps a reply promise)."""
        await self.redis.hsetnx(keys.case(case_id), "promise_kept_at", iso(self.clock()))

    async def add_note(self, case_id: str, agent: Agent, text: str) -> NotePublic:
        """Adds a private note to a case.

        Raises:
            CaseNotFound: unknown case.
        """
        if not await self.redis.exists(keys.case(case_id)):
            raise CaseNotFound()
        note = NotePublic(agent=agent.username, text=text, at=iso(self.clock()))
        await self.redis.rpush(keys.case_notes(case_id), note.model_dump_json())
        return note

    async def get_case(self, case_id: str) -> CasePublic:
        """One case.

        Raises:
            CaseNotFound: unknown case.
        """
        cases = await self._load_cases([case_id])
        if not cases:
            raise CaseNotFound()
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
            if case.channel == channels.WHATSAPP:
                # The WhatsApp channel keeps the window in the same Redis (contract/whatsapp_window.py).
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
            status=cast(CaseStatus, status),  # as stored by this module; pydantic checks it again
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
