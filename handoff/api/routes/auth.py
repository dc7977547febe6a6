"""Signing agents in and out; who am I."""

from __future__ import annotations

import logging
from typing import Dict

from fastapi import APIRouter, HTTPException, Request, Response, status
from itsdangerous import BadSignature

from handoff.agents import authenticate, normalise_username
from handoff.api.deps import (
    SESSION_COOKIE, AgentDep, SettingsDep, StoreDep, session_cookie_value, session_serializer,
)
from handoff.models import LoginRequest, SessionPublic

logger = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])

WRONG_CREDENTIALS = "wrong username or password"


@router.post("/auth/login", response_model=SessionPublic)
async def login(
    body: LoginRequest, request: Request, response: Response, settings: SettingsDep, store: StoreDep,
) -> SessionPublic:
    """Checks the password and sets the session cookie; one answer for every kind of failure."""
    username = normalise_username(body.username)
    if await store.login_failures(username) >= settings.max_login_failures:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins; try again in 15 minutes")
    agent = await authenticate(store, username, body.password)
    if agent is None:
        await store.count_login_failure(username)
        logger.info("failed sign-in")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS)
    await store.clear_login_failures(username)
    session = await store.create_session(agent.username)
    response.set_cookie(
        SESSION_COOKIE, session_cookie_value(settings, session),
        max_age=int(settings.session_hours * 3600), httponly=True, samesite="strict",
        secure=settings.secure_cookie(request.url.scheme), path="/",
    )
    logger.info("agent %s signed in", agent.username)
    return SessionPublic(agent=agent.public(), csrf_token=session.csrf_token)


@router.post("/auth/logout")
async def logout(request: Request, response: Response, settings: SettingsDep, store: StoreDep) -> Dict[str, str]:
    """Ends the session (on every instance: it lives in Redis) and clears the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            await store.end_session(str(session_serializer(settings).loads(cookie)))
        except BadSignature:
            pass  # a forged or stale cookie is simply cleared
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=settings.secure_cookie(request.url.scheme))
    return {"status": "signed out"}


@router.get("/api/me", response_model=SessionPublic)
async def me(signed_in: AgentDep) -> SessionPublic:
    """The signed-in agent and the CSRF token (the console reloads it after a page refresh)."""
    return SessionPublic(agent=signed_in.agent.public(), csrf_token=signed_in.session.csrf_token)
