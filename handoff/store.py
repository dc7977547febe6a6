"""The service's Redis data behind one object: :class:`Store` puts the parts of
:mod:`handoff.storage` together (cases, conversations, agents, sessions).

New code may use a part directly (``store.cases.claim(...)``); the methods here keep the names
every caller (consumer, privacy, agents CLI, tests, scripts) has used. Refusals are
:mod:`handoff.errors` (``CaseNotFound``, ``Conflict``), mapped to HTTP answers only by the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from redis.asyncio import Redis

from handoff.models import CaseCreate, CaseCreated, CasePublic, ConversationPublic, NotePublic, TranscriptLine
from handoff.settings import Settings
from handoff.storage.agents import PRESENCE_TTL_SECONDS, Agent, AgentStore
from handoff.storage.cases import NOT_RESOLVED, OPEN_STATUSES, CaseStore
from handoff.storage.common import Clock, iso, iso_from_timestamp, parse_iso, utc_now
from handoff.storage.conversations import ConversationStore
from handoff.storage.sessions import LOGIN_FAILURE_WINDOW_SECONDS, Session, SessionStore

__all__ = ["Agent", "Clock", "LOGIN_FAILURE_WINDOW_SECONDS", "NOT_RESOLVED", "OPEN_STATUSES",
           "PRESENCE_TTL_SECONDS", "Session", "Store", "iso", "iso_from_timestamp", "parse_iso", "utc_now"]


class Store:
    """Typed access to the service's Redis data; each method is its part's (see the part's docs).

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
        self.agents = AgentStore(redis)
        self.sessions = SessionStore(redis, settings)
        self.conversation_store = ConversationStore(redis)
        self.cases = CaseStore(redis, settings, self.agents, self.conversation_store, clock)

    # --- cases (handoff.storage.cases) -----------------------------------------------------------

    async def open_case(self, packet: CaseCreate, *, owner: Optional[Agent] = None) -> Tuple[str, bool]:
        return await self.cases.open_case(packet, owner=owner)

    async def add_identity(self, case_id: str, identity: Dict[str, Any]) -> bool:
        return await self.cases.add_identity(case_id, identity)

    def reply_by(self, now: datetime) -> datetime:
        return self.cases.reply_by(now)

    async def case_created(self, case_id: str) -> CaseCreated:
        return await self.cases.case_created(case_id)

    async def claim(self, case_id: str, agent: Agent) -> None:
        await self.cases.claim(case_id, agent)

    async def release(self, case_id: str, agent: Agent) -> None:
        await self.cases.release(case_id, agent)

    async def discard(self, case_id: str, agent: Agent) -> None:
        await self.cases.discard(case_id, agent)

    async def reassign(self, case_id: str, agent: Agent, *, expected_owner: str) -> None:
        await self.cases.reassign(case_id, agent, expected_owner=expected_owner)

    async def finish(self, case_id: str, *, expected_status: str, expected_owner: Optional[str], target: str,
                     outcome: str = "") -> None:
        await self.cases.finish(case_id, expected_status=expected_status, expected_owner=expected_owner,
                                target=target, outcome=outcome)

    async def keep_promise(self, case_id: str) -> None:
        await self.cases.keep_promise(case_id)

    async def add_note(self, case_id: str, agent: Agent, text: str) -> NotePublic:
        return await self.cases.add_note(case_id, agent, text)

    async def get_case(self, case_id: str) -> CasePublic:
        return await self.cases.get_case(case_id)

    async def find_case(self, case_id: str) -> Optional[CasePublic]:
        return await self.cases.find_case(case_id)

    async def open_case_of(self, conversation_id: str) -> Optional[CasePublic]:
        return await self.cases.open_case_of(conversation_id)

    async def latest_case_of(self, conversation_id: str) -> Optional[CasePublic]:
        return await self.cases.latest_case_of(conversation_id)

    async def queue(self) -> List[CasePublic]:
        return await self.cases.queue()

    async def list_cases(self, status: Optional[str] = None, conversation_id: Optional[str] = None,
                         limit: int = 200) -> List[CasePublic]:
        return await self.cases.list_cases(status, conversation_id=conversation_id, limit=limit)

    # --- conversations and transcripts (handoff.storage.conversations) ----------------------------

    async def record_line(self, conversation_id: str, line_key: str, line: TranscriptLine, timestamp: float) -> bool:
        return await self.conversation_store.record_line(conversation_id, line_key, line, timestamp)

    async def transcript(self, conversation_id: str, limit: int = 5000) -> List[TranscriptLine]:
        return await self.conversation_store.transcript(conversation_id, limit)

    async def touch_conversation(self, conversation_id: str, timestamp: float, *, language: Optional[str] = None,
                                 channel: Optional[str] = None) -> bool:
        return await self.conversation_store.touch_conversation(conversation_id, timestamp, language=language,
                                                            channel=channel)

    async def record_events(
        self, touches: Sequence[Tuple[str, float, Optional[str], Optional[str]]],
        lines: Sequence[Tuple[str, str, TranscriptLine, float]], read: Sequence[str] = (),
    ) -> Tuple[List[bool], List[bool], List[ConversationPublic]]:
        return await self.conversation_store.record_events(touches, lines, read)

    async def conversation_known(self, conversation_id: str) -> bool:
        return await self.conversation_store.conversation_known(conversation_id)

    async def conversation(self, conversation_id: str) -> Optional[ConversationPublic]:
        return await self.conversation_store.conversation(conversation_id)

    async def conversations(self, conversation_ids: Optional[Sequence[str]] = None,
                            limit: int = 200) -> List[ConversationPublic]:
        return await self.conversation_store.conversations(conversation_ids, limit)

    # --- agents and presence (handoff.storage.agents) ---------------------------------------------

    async def save_agent(self, agent: Agent) -> None:
        await self.agents.save_agent(agent)

    async def remove_agent(self, username: str) -> bool:
        return await self.agents.remove_agent(username)

    async def get_agent(self, username: str) -> Optional[Agent]:
        return await self.agents.get_agent(username)

    async def set_agent_role(self, username: str, role: str) -> bool:
        return await self.agents.set_agent_role(username, role)

    async def list_agents(self) -> List[Agent]:
        return await self.agents.list_agents()

    async def set_present(self, username: str) -> None:
        await self.agents.set_present(username)

    async def set_absent(self, username: str) -> None:
        await self.agents.set_absent(username)

    async def available_agents(self) -> List[str]:
        return await self.agents.available_agents()

    # --- sessions and sign-in failures (handoff.storage.sessions) ---------------------------------

    async def create_session(self, username: str) -> Session:
        return await self.sessions.create_session(username)

    async def get_session(self, session_id: str) -> Optional[Session]:
        return await self.sessions.get_session(session_id)

    async def end_session(self, session_id: str) -> None:
        await self.sessions.end_session(session_id)

    async def login_failures(self, username: str) -> int:
        return await self.sessions.login_failures(username)

    async def count_login_failure(self, username: str) -> None:
        await self.sessions.count_login_failure(username)

    async def clear_login_failures(self, username: str) -> None:
        await self.sessions.clear_login_failures(username)
