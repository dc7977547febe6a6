"""Pydantic models of the handoff API, in families (``...Create`` in, ``...Public`` out).

The JSON shapes follow ``handoff/API.md`` exactly; the context packet is the one
``contract/packet.py`` builds and keeps unknown fields, so a newer bot can add to the
packet without breaking an older service.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.reasons import EscalationReason

CaseStatus = Literal["queued", "human", "bot", "resolved"]
#: What an agent may do, each role everything of the one before it (``handoff/api/roles.py``):
#: ``agent`` works the queue and their own cases, ``supervisor`` any case (and takes cases over
#: from colleagues), ``admin`` also erasure and agent management.
Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple = ("agent", "supervisor", "admin")
DEFAULT_ROLE: Role = "agent"
MAX_TEXT = 4000
MAX_PROBLEM_DESCRIPTION = 20_000
MAX_TRANSCRIPT_LINES = 5000
MAX_BOT_ATTEMPTS = 500


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate in its strings (keys too) replaced by U+FFFD.

    JSON allows ``"\\ud800"`` and Python parses it, but no UTF-8 can encode it: storing it in
    Redis, or even echoing it in a 422, would fail with a 500. A broken client's text is kept
    with a replacement character instead, like undecodable bytes anywhere else.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    return value


class _Request(BaseModel):
    """A request body; its strings are made encodable first (see :func:`without_lone_surrogates`)."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        return without_lone_surrogates(data)


class Identity(BaseModel):
    """Who the customer is and how the bot verified it."""

    model_config = ConfigDict(extra="allow")

    customer_id: Optional[str] = None
    name: Optional[str] = None
    verified_by: Optional[str] = None
    verified_at: Optional[Any] = None


class PacketLine(BaseModel):
    """One line of the transcript the bot sends along with the case."""

    model_config = ConfigDict(extra="allow")

    # ``from`` is a Python keyword, hence the alias.
    from_: str = Field(alias="from")
    text: Optional[str] = None
    at: Optional[Any] = None


class CaseCreate(_Request):
    """The bot's context packet: body of ``POST /api/cases``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    conversation_id: str = Field(min_length=1, max_length=256)
    # One of contract.reasons.EscalationReason; any other well-formed reason is accepted too: a
    # customer's handoff must not fail because the bot learned a new reason before the service did.
    reason: str = Field(EscalationReason.REQUEST.value, pattern=r"^[a-z][a-z_]{0,63}$")
    language: str = Field("nl", pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")
    channel: Optional[str] = Field(None, max_length=64)
    identity: Identity = Field(default_factory=Identity)
    # Kept verbatim, but a description longer than this (a customer pasting 100 kB) is cut rather
    # than refused: a handoff must not fail because the customer said too much.
    problem_description: Optional[str] = None
    intent: Optional[str] = None
    entities: Dict[str, Any] = Field(default_factory=dict)
    bot_attempts: List[Any] = Field(default_factory=list, max_length=MAX_BOT_ATTEMPTS)
    transcript: List[PacketLine] = Field(default_factory=list, max_length=MAX_TRANSCRIPT_LINES)

    @field_validator("transcript", "bot_attempts", mode="before")
    @classmethod
    def _newest(cls, value: Any, info: Any) -> Any:
        # A very long conversation keeps its newest lines (and attempts) instead of losing the handoff.
        limit = MAX_TRANSCRIPT_LINES if info.field_name == "transcript" else MAX_BOT_ATTEMPTS
        return value[-limit:] if isinstance(value, list) and len(value) > limit else value

    @field_validator("problem_description")
    @classmethod
    def _problem_description(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and len(value) > MAX_PROBLEM_DESCRIPTION:
            return value[: MAX_PROBLEM_DESCRIPTION - 1] + "…"
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        # The bot may send None before it has detected a language; Dutch is the house default.
        return "nl" if value in (None, "") else value

    def packet(self) -> Dict[str, Any]:
        """The packet as stored with the case (JSON-ready, ``from`` spelled as the bot does)."""
        return self.model_dump(mode="json", by_alias=True)


class CaseCreated(BaseModel):
    """Answer to the bot: what to tell the customer."""

    case_id: str
    status: Literal["queued", "no_agents"]
    position: Optional[int]
    estimate_minutes: Optional[int]
    reply_by: Optional[str]
    channel: Optional[str]


class Promise(BaseModel):
    """A reply promised to the customer, kept with the case until it is kept."""

    kind: str = "reply"
    due_at: str
    channel: Optional[str] = None
    kept_at: Optional[str] = None


class NotePublic(BaseModel):
    """A private note of an agent on a case (never sent to the customer)."""

    agent: str
    text: str
    at: str


class CasePublic(BaseModel):
    """A case as agents see it."""

    id: str
    conversation_id: str
    status: CaseStatus
    owner: Optional[str] = None
    owner_name: Optional[str] = None
    reason: str
    language: str
    channel: Optional[str] = None
    packet: Dict[str, Any]
    created_at: str
    claimed_at: Optional[str] = None
    resolved_at: Optional[str] = None
    outcome: Optional[str] = None
    position: Optional[int] = None
    waiting_seconds: int = 0
    promise: Optional[Promise] = None
    overdue: bool = False
    notes: List[NotePublic] = Field(default_factory=list)
    # WhatsApp only: seconds left in the 24-hour window (0: only a template reaches the customer).
    whatsapp_window_seconds_left: Optional[int] = None


class TranscriptLine(BaseModel):
    """One line of a conversation: customer, bot or agent."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Literal["customer", "bot", "agent"] = Field(alias="from")
    text: str
    at: Optional[str] = None
    agent_name: Optional[str] = None

    @classmethod
    def of(cls, who: Literal["customer", "bot", "agent"], text: str, at: Optional[str],
           agent_name: Optional[str] = None) -> TranscriptLine:
        """A line (``from`` cannot be a keyword argument in Python)."""
        return cls.model_validate({"from": who, "text": text, "at": at, "agent_name": agent_name})


class CaseDetail(CasePublic):
    """A case with the conversation's transcript."""

    transcript: List[TranscriptLine] = Field(default_factory=list)


class _Text(_Request):
    """A non-blank text of at most 4000 characters."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value.strip()


class MessageCreate(_Text):
    """An agent's message to the customer."""


class NoteCreate(_Text):
    """An agent's private note."""


class ResolveRequest(_Request):
    """How a case ended."""

    outcome: str = Field(min_length=1, max_length=500)

    @field_validator("outcome")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("outcome must not be blank")
        return value.strip()


class LoginRequest(_Request):
    """Agent credentials."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AgentPublic(BaseModel):
    """An agent without secrets."""

    username: str
    name: str
    role: Role = DEFAULT_ROLE


class RoleChange(_Request):
    """An admin gives an agent another role."""

    role: Role


class SessionPublic(BaseModel):
    """The signed-in agent and the CSRF token to send with every change."""

    agent: AgentPublic
    csrf_token: str


class ConversationPublic(BaseModel):
    """A conversation in the live list."""

    conversation_id: str
    last_text: Optional[str] = None
    last_at: Optional[str] = None
    owner: Literal["bot", "agent"] = "bot"
    owner_name: Optional[str] = None
    case_id: Optional[str] = None
    case_status: Optional[CaseStatus] = None
    language: Optional[str] = None
    channel: Optional[str] = None


class Health(BaseModel):
    """Liveness, Redis reachability, and whether live pushes reach this instance's consoles."""

    status: str
    redis: bool
    pushes: bool
