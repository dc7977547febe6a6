"""Agents (accounts and roles) and their presence (whose console is open now)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, cast

from redis.asyncio import Redis

from contract import keys
from handoff.models import DEFAULT_ROLE, ROLES, AgentPublic, Role

PRESENCE_TTL_SECONDS = 60

# KEYS: agent hash; ARGV: role
_SET_ROLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'role', ARGV[1])
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
        # A stored role is one of ROLES (checked when it is set); pydantic checks it again.
        return AgentPublic(username=self.username, name=self.name, role=cast(Role, self.role))


class AgentStore:
    """Agents and presence in Redis.

    Args:
        redis: a ``redis.asyncio`` client with ``decode_responses=True``.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

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
