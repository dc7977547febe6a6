"""Membership of a Redis consumer group on a stream, shared by the service's consumers
(handoff/consumer.py: transcripts and cases; handoff/insights_consumer.py: the report, which also
reads the backend's promise stream).

Each consumer group reads the whole stream on its own; within a group, every replica of the
service is one named consumer. What a member must do the same way whatever it computes: create
the group if missing (from the start of the stream), take over the entries a crashed member read
but never acknowledged, and leave the group on shutdown when it holds nothing pending.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any, Awaitable, Callable, List, Optional

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from contract import keys

# An entry read but not acknowledged for this long belongs to a member that is gone.
STALE_PENDING_MS = 60_000


def member_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class GroupMember:
    """One named consumer of ``group`` on ``stream`` (by default the event stream)."""

    def __init__(self, redis: Redis, group: str, name: Optional[str], batch: int,
                 stream: str = keys.EVENTS_STREAM) -> None:
        self.redis = redis
        self.group = group
        self.stream = stream
        self.name = name or member_name()
        self.batch = batch

    async def ensure_group(self) -> None:
        """Creates the group (and the stream) from the start of the stream if missing."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def claim_stale(self, handle: Callable[[List[Any]], Awaitable[Any]]) -> None:
        """Takes over, batch by batch, the entries a crashed member read but never acknowledged."""
        start = "0-0"
        while True:
            result = await self.redis.xautoclaim(self.stream, self.group, self.name,
                                                 min_idle_time=STALE_PENDING_MS, start_id=start, count=self.batch)
            start, entries = result[0], result[1]
            await handle(entries)
            if start in ("0-0", b"0-0"):
                return

    async def leave(self) -> None:
        """Removes this consumer from the group when it holds no pending entries."""
        try:
            pending = await self.redis.xpending_range(
                self.stream, self.group, min="-", max="+", count=1, consumername=self.name)
            if not pending:
                await self.redis.xgroup_delconsumer(self.stream, self.group, self.name)
        except (RedisError, OSError):
            pass
