"""The action server's client of the handoff service's API, without blocking the event loop.

Actions open (or find) a case with ``await open_case(packet)``. Underneath is one
:class:`HandoffClient` per process: an ``httpx.AsyncClient`` whose connections are pooled and
kept alive, created lazily on the running event loop (connections cannot move between loops), with
the bearer token ``HANDOFF_API_TOKEN`` and a 5 s timeout. ``HANDOFF_URL`` names the service.
A service that cannot be reached, is slow, answers an error or no JSON is logged and reads as
None: the handoff action says so to the customer and keeps the request pending.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Dict, Optional

import httpx

from actions.metrics import observe_handoff_call

logger = logging.getLogger(__name__)

HANDOFF_TIMEOUT_SECONDS = 5.0
DEFAULT_HANDOFF_URL = "http://127.0.0.1:8000"


class HandoffClient:
    """Calls the handoff service's API over one pooled ``httpx.AsyncClient``."""

    def __init__(self, base_url: str, token: str, timeout: float = HANDOFF_TIMEOUT_SECONDS,
                 transport: Optional[httpx.AsyncBaseTransport] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # No token (possible only locally) sends no header: "Bearer " alone is no valid header value;
        # the service refuses the call either way.
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport, headers=headers)

    async def open_case(self, packet: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Opens (or finds) the case for ``packet``; None when the service cannot answer."""
        started, ok = time.perf_counter(), False
        try:
            response = await self._http.post("/api/cases", json=packet)
            response.raise_for_status()
            answer, ok = response.json(), True
            return answer
        except (httpx.HTTPError, ValueError) as error:
            logger.error("handoff service unavailable for %s: %s", packet.get("conversation_id"),
                         str(error) or type(error).__name__)
            return None
        finally:
            observe_handoff_call(time.perf_counter() - started, ok)

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()


_client: Optional[HandoffClient] = None
_client_loop: Optional[asyncio.AbstractEventLoop] = None


def handoff_client() -> HandoffClient:
    """The process's client, for the running event loop and the configured service.

    Made on first use; made again only when the loop or ``HANDOFF_URL`` / ``HANDOFF_API_TOKEN``
    changed (tests run each action on a loop of its own and point it elsewhere).
    """
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    base_url = os.environ.get("HANDOFF_URL", DEFAULT_HANDOFF_URL).rstrip("/")
    token = os.environ.get("HANDOFF_API_TOKEN", "")
    if _client is None or _client_loop is not loop or (_client.base_url, _client.token) != (base_url, token):
        _client, _client_loop = HandoffClient(base_url, token), loop
    return _client


async def open_case(packet: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Opens (or finds) the case at the handoff service; None when the service cannot be reached."""
    return await handoff_client().open_case(packet)
