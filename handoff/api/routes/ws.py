"""The console's websocket: live pushes, and the agent's presence while it is open."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import List
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from starlette.websockets import WebSocketState

from handoff.api.deps import get_hub, get_settings, get_store, signed_in
from handoff.consumer import Hub, stop_task
from handoff.store import Store

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ws"])

PRESENCE_REFRESH_SECONDS = 20.0
CLOSE_NOT_SIGNED_IN = 4401


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers send Origin on websockets; another site's page must not use our cookie."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser (tests, tools): the cookie still has to be valid
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


@router.websocket("/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Pushes ``line``, ``case`` and ``conversation`` messages to a signed-in agent."""
    settings, store, hub = get_settings(websocket), get_store(websocket), get_hub(websocket)
    me = await signed_in(settings, store, websocket.cookies)
    if me is None or not _same_origin(websocket):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    username = me.agent.username
    # Present and subscribed before the socket opens: the console misses nothing, and the bot
    # counts this agent as available from the moment the console says it is connected.
    queue = hub.connect(username)
    try:
        await store.set_present(username)
        await websocket.accept()
    except BaseException:
        hub.disconnect(queue)
        raise

    async def send() -> None:
        while True:
            data = await queue.get()
            if not data:
                return  # the hub dropped us: too slow
            await websocket.send_text(data)

    async def receive() -> None:
        while True:
            text = await websocket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                # Through the queue: one writer per socket.
                queue.put_nowait(json.dumps({"type": "pong"}))

    async def keep_present() -> None:
        while True:
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
            if await signed_in(settings, store, websocket.cookies) is None:
                return  # signed out elsewhere or expired
            await store.set_present(username)

    tasks = [asyncio.create_task(job()) for job in (send, receive, keep_present)]
    code = status.WS_1000_NORMAL_CLOSURE
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[2] in done and not tasks[2].exception():
            code = CLOSE_NOT_SIGNED_IN
        for task in done:
            error = task.exception()
            if error and not isinstance(error, WebSocketDisconnect):
                logger.warning("console socket closed: %s", type(error).__name__)
    finally:
        hub.disconnect(queue)
        # Shielded: a server shutting down cancels this handler, and the agent must still stop
        # counting as available (otherwise the bot promises a wait that nobody will answer).
        await asyncio.shield(asyncio.ensure_future(_clean_up(websocket, tasks, hub, store, username, code)))


async def _clean_up(
    websocket: WebSocket, tasks: List[asyncio.Task[None]], hub: Hub, store: Store, username: str, code: int,
) -> None:
    """Stops the socket's tasks, clears presence when it was the agent's last console here, closes."""
    for task in tasks:
        await stop_task(task)
    if not hub.local_sockets_of(username):
        await store.set_absent(username)
    if websocket.application_state == WebSocketState.CONNECTED:
        try:
            await websocket.close(code=code)
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass  # the client left first
