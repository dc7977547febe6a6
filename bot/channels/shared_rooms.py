"""socket.io rooms shared by every Rasa replica over Redis pub/sub, without a new way to fail.

A web customer's socket is connected to one Rasa replica, but a message for them can be sent
from any: an agent's line, the hand-back, the honest wait of a case opened late all come in over
the HTTP API of whichever replica the handoff service reached. python-socketio's
``AsyncRedisManager`` shares rooms, but as it ships (5.8):

- it delivers even a replica's own messages through Redis, so with Redis away nobody gets
  anything, not even the reply to their own message on the same replica;
- it publishes with pickle and unpickles whatever arrives on the channel (anyone who may write
  to the Redis could run code in every Rasa server);
- if Redis is down when its listener starts, the listener spins, printing a traceback per turn;
- its identity on the channel (``host_id``) is made when the manager is, before Sanic forks its
  workers (``make run`` serves Rasa with two): every worker had the same one and dropped the
  others' messages as its own, so an agent's line sent through one worker never reached a
  customer whose socket another worker held.

:class:`SharedRooms` delivers to this replica's own sockets at once, publishes JSON for the
others (and skips its own publications when they come back), and its listener waits with a
growing pause while Redis is away; a forked worker takes its own ``host_id`` and Redis
connections the first time it starts listening or emits. Callbacks (acknowledgements across
replicas) keep the stock path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from typing import Any, AsyncIterator, Dict, Optional

from redis.exceptions import RedisError
from socketio import AsyncRedisManager
from socketio.asyncio_manager import AsyncManager

logger = logging.getLogger(__name__)

MAX_PAUSE_SECONDS = 30.0


class SharedRooms(AsyncRedisManager):
    """A Redis client manager that delivers locally first and speaks JSON on the channel."""

    name = "helder-shared-rooms"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pid = os.getpid()

    def _own_process(self) -> None:
        """In a process forked after this manager was made (a Sanic worker): a new identity on the
        channel and new Redis connections (the parent's are not this process's to use)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.host_id = uuid.uuid4().hex
            self._redis_connect()

    def initialize(self) -> None:
        self._own_process()
        super().initialize()

    async def emit(self, event: str, data: Any, namespace: Optional[str] = None, room: Optional[str] = None,
                   skip_sid: Any = None, callback: Any = None, **kwargs: Any) -> None:
        self._own_process()
        if kwargs.get("ignore_queue") or callback is not None:
            return await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, **kwargs)
        namespace = namespace or "/"
        await AsyncManager.emit(self, event, data, namespace=namespace, room=room, skip_sid=skip_sid)
        await self._publish({"method": "emit", "event": event, "data": data, "namespace": namespace,
                             "room": room, "skip_sid": skip_sid, "callback": None, "host_id": self.host_id})

    async def _handle_emit(self, message: Dict[str, Any]) -> None:
        if message.get("host_id") == self.host_id:
            return  # delivered here already, when it was emitted
        await super()._handle_emit(message)

    async def _publish(self, data: Dict[str, Any]) -> None:
        try:
            await self.redis.publish(self.channel, json.dumps(data, ensure_ascii=False))
        except (RedisError, OSError, TypeError, ValueError) as error:
            # The replica's own sockets have it; the others miss this one message.
            logger.warning("socket.io message not shared with the other replicas (%s)", type(error).__name__)

    async def _listen(self) -> AsyncIterator[Dict[str, Any]]:
        channel = self.channel.encode("utf-8")
        pause = 1.0
        while True:
            try:
                await self.pubsub.subscribe(self.channel)
                pause = 1.0
                async for message in self.pubsub.listen():
                    if message.get("type") != "message" or message.get("channel") != channel:
                        continue
                    try:
                        data = json.loads(message["data"])
                    except (TypeError, ValueError, UnicodeDecodeError):
                        continue  # not ours (and never unpickled)
                    if isinstance(data, dict):
                        yield data
            except (RedisError, OSError) as error:
                logger.warning("socket.io rooms: Redis unreachable (%s); retrying in %.0f s",
                               type(error).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE_SECONDS)
                self._redis_connect()
