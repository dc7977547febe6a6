"""Dependencies of the routers as ``Annotated`` aliases: settings, clients, who is calling.

Agents sign in with a session cookie that holds only a signed, random session id; the session
itself (agent, CSRF token) lives in Redis, so signing out really ends it on every instance.
Both expire: the cookie's signature after ``HANDOFF_SESSION_HOURS`` (checked on every request,
whatever the browser does with Max-Age) and the Redis session with the same TTL. The agent's
record (and role) is read on every request, so a removed agent or a changed role takes effect at
once. What each role may do is in :mod:`handoff.api.roles`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Awaitable, Callable, Mapping, Optional

from fastapi import Depends, HTTPException, Request, status
from starlette.requests import HTTPConnection
from itsdangerous import BadSignature, URLSafeTimedSerializer

from handoff.api import roles
from handoff.consumer import Hub
from handoff.rasa_client import RasaClient
from handoff.settings import Settings
from handoff.store import Agent, Session, Store
from handoff.workflow import CaseWorkflow

SESSION_COOKIE = "handoff_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class SignedIn:
    """The agent behind a request and their session."""

    agent: Agent
    session: Session


def get_settings(connection: HTTPConnection) -> Settings:
    """The settings the app was started with."""
    return connection.app.state.settings


def get_store(connection: HTTPConnection) -> Store:
    """The Redis-backed store."""
    return connection.app.state.store


def get_rasa(connection: HTTPConnection) -> RasaClient:
    """The Rasa HTTP client."""
    return connection.app.state.rasa


def get_hub(connection: HTTPConnection) -> Hub:
    """Where pushes to the consoles go."""
    return connection.app.state.hub


def get_workflow(connection: HTTPConnection) -> CaseWorkflow:
    """The case workflow every router changes cases through."""
    return connection.app.state.workflow


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RasaDep = Annotated[RasaClient, Depends(get_rasa)]
HubDep = Annotated[Hub, Depends(get_hub)]
WorkflowDep = Annotated[CaseWorkflow, Depends(get_workflow)]


def session_serializer(settings: Settings) -> URLSafeTimedSerializer:
    """Signs session cookies with ``HANDOFF_SESSION_SECRET``."""
    return URLSafeTimedSerializer(settings.session_secret.get_secret_value(), salt="handoff-session")


def session_cookie_value(settings: Settings, session: Session) -> str:
    """The signed cookie value for a session."""
    return session_serializer(settings).dumps(session.session_id)


async def signed_in(
    settings: Settings, store: Store, cookies: Mapping[str, str],
) -> Optional[SignedIn]:
    """The agent of a session cookie, or None (no cookie, bad signature, expired, signed out)."""
    cookie = cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        session_id = session_serializer(settings).loads(cookie, max_age=int(settings.session_hours * 3600))
    except BadSignature:
        return None
    session = await store.get_session(str(session_id))
    if session is None:
        return None
    agent = await store.get_agent(session.username)
    return SignedIn(roles.effective(agent, settings), session) if agent else None


async def optional_agent(request: Request, settings: SettingsDep, store: StoreDep) -> Optional[SignedIn]:
    """The signed-in agent, if any (for pages that redirect instead of failing)."""
    return await signed_in(settings, store, request.cookies)


async def require_agent(request: Request, settings: SettingsDep, store: StoreDep) -> SignedIn:
    """A signed-in agent; changes also need the session's CSRF token in ``X-CSRF-Token``."""
    found = await signed_in(settings, store, request.cookies)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), found.session.csrf_token.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return found


def require_role(role: str) -> Callable[..., Awaitable[SignedIn]]:
    """A dependency: a signed-in agent (CSRF-checked like every change) with ``role`` or above."""

    async def dependency(me: Annotated[SignedIn, Depends(require_agent)]) -> SignedIn:
        if not roles.has_role(me.agent, role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{role}s only")
        return me

    dependency.__name__ = f"require_{role}"
    return dependency


async def require_bot(request: Request, settings: SettingsDep) -> None:
    """The bot's bearer token (``HANDOFF_API_TOKEN``), compared in constant time.

    Only the bot's routes use it, and they take nothing else: an agent's session cookie (even
    with its CSRF token) is no bot token.
    """
    expected = settings.api_token.get_secret_value()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # An empty configured token (possible only locally) must not let an empty header through.
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bot token",
                            headers={"WWW-Authenticate": "Bearer"})


AgentDep = Annotated[SignedIn, Depends(require_agent)]
# One function per role, so FastAPI runs each check once per request wherever it is declared.
require_supervisor = require_role(roles.SUPERVISOR)
require_admin = require_role(roles.ADMIN)
SupervisorDep = Annotated[SignedIn, Depends(require_supervisor)]
AdminDep = Annotated[SignedIn, Depends(require_admin)]
OptionalAgentDep = Annotated[Optional[SignedIn], Depends(optional_agent)]
BotDep = Depends(require_bot)
