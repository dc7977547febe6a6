"""One kept-alive HTTP session per endpoint instead of a new one for every call.

Rasa 3.6's ``EndpointConfig.request`` (how the Rasa server calls the action server) opens a new
``aiohttp.ClientSession`` for every request (``async with self.session() as session``) and closes
it afterwards: every custom action of every turn builds a connection pool, connects over TCP,
sends one request and tears it all down again, on the Rasa server and on the action server
(which accepts and sets up the connection). A turn calls the action server one to three times.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) replaces
``EndpointConfig.session``: it hands out one session per endpoint configuration and event loop,
made as Rasa makes it (same headers, authentication and timeout) and kept open, so its
connections stay alive between calls. An idle connection is closed by this side after
:data:`KEEPALIVE_SECONDS`, before the action server closes it (Sanic, which rasa-sdk runs on,
after 5 s): a call never goes out on a connection the server is closing at that moment (aiohttp
would fail it with ``ServerDisconnectedError``, and the customer would get the apology for an
action server that is down). Each Sanic worker has its own event loop and so its own sessions. A
closed session (the server stopping) is replaced by a new one at the next call. :func:`close_all`
closes them when the server stops (a listener installed with the patch).

The kept session writes the JSON of each call (the whole conversation) with ujson
(bot/fast_json.py), not aiohttp's default ``json.dumps``.

The figures (CPU per turn before and after) are in docs/benchmarks.md, "Profile under load".
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Tuple

import aiohttp
import rasa.utils.endpoints
from rasa.utils.endpoints import EndpointConfig

from bot import fast_json, server_listeners

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.utils.endpoints:EndpointConfig.session", "rasa.core.run:configure_app")

#: An idle kept-alive connection is closed after this long (the action server's Sanic: 5 s).
KEEPALIVE_SECONDS = 2.0

#: (what the session is made of, the event loop's id) → (that loop, the kept session).
_sessions: Dict[Tuple[str, int], Tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}


class _Kept:
    """What ``async with endpoint.session() as session`` gets: the kept session, not closed on exit."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *_: object) -> None:
        return None


def _new_session(endpoint: EndpointConfig) -> aiohttp.ClientSession:
    """Rasa's ``EndpointConfig.session()``, with the idle connections closed after KEEPALIVE_SECONDS
    and the requests' JSON written by bot/fast_json.py."""
    basic_auth = endpoint.basic_auth
    return aiohttp.ClientSession(
        headers=endpoint.headers,
        auth=aiohttp.BasicAuth(basic_auth["username"], basic_auth["password"]) if basic_auth else None,
        timeout=aiohttp.ClientTimeout(total=rasa.utils.endpoints.DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
        json_serialize=fast_json.dumps,
    )


def _kept_sessions() -> Callable[[EndpointConfig], _Kept]:
    def session(self: EndpointConfig) -> _Kept:
        # Keyed by what Rasa builds the session from, not by the object: equal configurations
        # share a session, and a configuration that is gone cannot leave its id to another.
        made_of = repr((sorted((self.headers or {}).items()), sorted((self.basic_auth or {}).items())))
        loop = asyncio.get_running_loop()
        key = (made_of, id(loop))
        kept = _sessions.get(key)
        # A loop that is gone can leave its id to a new one: the session must be of this loop.
        if kept is None or kept[0] is not loop or kept[1].closed:
            for old in [k for k, (old_loop, _) in _sessions.items() if old_loop.is_closed()]:
                del _sessions[old]  # its loop is closed: it cannot be closed or used any more
            kept = _sessions[key] = (loop, _new_session(self))
        return _Kept(kept[1])

    return session


async def close_all(*_: Any) -> None:
    """Closes the sessions of the running event loop (a Sanic ``after_server_stop`` listener)."""
    loop = asyncio.get_running_loop()
    for key in [key for key, (kept_loop, _) in _sessions.items() if kept_loop is loop]:
        await _sessions.pop(key)[1].close()


def install() -> None:
    """Replaces ``EndpointConfig.session`` with the kept sessions, and closes them as each Sanic
    app Rasa configures stops."""
    EndpointConfig.session = _kept_sessions()
    server_listeners.on_every_server(close_all, "after_server_stop")
