"""Signed-in agents' sessions and the count of failed sign-ins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Optional

from redis.asyncio import Redis

from contract import keys
from handoff.settings import Settings

LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Session:
    """A signed-in agent's session."""

    session_id: str
    username: str
    csrf_token: str


class SessionStore:
    """Sessions and failed sign-ins in Redis.

    Args:
        redis: a ``redis.asyncio`` client with ``decode_responses=True``.
        settings: for the session length.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

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
