"""The service's only way to talk to Rasa: its HTTP API, with a short-lived admin JWT.

Rasa is started with ``--jwt-secret`` (HS256); a token with ``role: admin`` may act on any
conversation. Failures become :class:`RasaError` with a message fit to show an agent; the token
and the response body never end up in it (the body may echo customer data).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional
from urllib.parse import quote

import httpx
import jwt

from contract import slots

logger = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 300


class RasaError(Exception):
    """Rasa could not be reached or refused the call."""


class RasaClient:
    """Pause, resume, agent messages, hand-back and trackers over Rasa's HTTP API.

    Args:
        base_url: e.g. ``http://127.0.0.1:5005``.
        jwt_secret: Rasa's ``--jwt-secret``.
        timeout: seconds per request.
        transport: for tests (an in-process fake instead of the network).
    """

    def __init__(
        self, base_url: str, jwt_secret: str, timeout: float = 10.0,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self._secret = jwt_secret
        self._token: Optional[str] = None
        self._token_expires = 0.0
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    def _auth_header(self) -> Dict[str, str]:
        # A fresh token every few minutes: a leaked one is useless soon after.
        now = time.time()
        if self._token is None or now > self._token_expires - 30:
            self._token_expires = now + TOKEN_LIFETIME_SECONDS
            self._token = jwt.encode(
                {"user": {"username": "handoff", "role": "admin"}, "exp": int(self._token_expires)},
                self._secret, algorithm="HS256",
            )
        return {"Authorization": f"Bearer {self._token}"}

    async def _request(
        self, method: str, path: str, what: str, *, params: Optional[Dict[str, str]] = None,
        json: Any = None,
    ) -> Any:
        try:
            response = await self._http.request(method, path, params=params, json=json,
                                                headers=self._auth_header())
        except httpx.HTTPError as error:
            logger.warning("rasa %s failed: %s", what, type(error).__name__)
            raise RasaError(f"Rasa is unreachable ({what} failed)") from error
        if response.status_code >= 400:
            logger.warning("rasa %s failed: HTTP %s", what, response.status_code)
            raise RasaError(f"Rasa refused the {what} (HTTP {response.status_code})")
        try:
            return response.json()
        except ValueError:
            return None

    @staticmethod
    def _conversation(conversation_id: str) -> str:
        return f"/conversations/{quote(conversation_id, safe='')}"

    async def send_agent_message(self, conversation_id: str, text: str, agent_id: str, agent_name: str,
                                 message_id: str) -> None:
        """Appends the agent's line as a bot utterance and delivers it to the customer's channel.

        ``metadata.agent_id`` tells every reader of the tracker (and of the event stream) that a
        person wrote it; ``message_id`` lets the service recognise its own line on the stream.
        """
        await self._request(
            "POST", f"{self._conversation(conversation_id)}/tracker/events", "agent message",
            params={"execute_side_effects": "true", "output_channel": "latest"},
            json={"event": "bot", "text": text,
                  "metadata": {"agent_id": agent_id, "agent_name": agent_name, "message_id": message_id}},
        )

    async def pause(self, conversation_id: str) -> None:
        """The bot stops answering this conversation."""
        await self._request("POST", f"{self._conversation(conversation_id)}/tracker/events", "pause",
                            params={"output_channel": "latest"}, json={"event": "pause"})

    async def resume(self, conversation_id: str) -> None:
        """The bot answers this conversation again."""
        await self._request("POST", f"{self._conversation(conversation_id)}/tracker/events", "resume",
                            params={"output_channel": "latest"}, json={"event": "resume"})

    async def hand_back(self, conversation_id: str) -> None:
        """Resumes the conversation and lets the bot take over with ``action_handback``."""
        await self.resume(conversation_id)
        await self._request("POST", f"{self._conversation(conversation_id)}/execute", "hand-back",
                            params={"output_channel": "latest"}, json={"name": "action_handback"})
        # /execute runs the action and stops; the bot now listens, as after any of its turns. Without
        # it the customer's next message follows action_handback instead of action_listen, no rule
        # matches ("kan ik nog mijn wachtwoord opnieuw instellen" became a best guess) and the core
        # fallback answers.
        try:
            await self._request("POST", f"{self._conversation(conversation_id)}/tracker/events", "hand-back listen",
                                json={"event": "action", "name": "action_listen"})
        except RasaError:
            pass  # handed back all the same; the next message gets the bot's best guess (logged above)

    async def announce_agent(self, conversation_id: str, agent_name: str) -> None:
        """Tells the customer, in their language, that a person has joined (``action_agent_joined``).

        The bot is paused, so nothing else runs; the action's words live in the domain (nl/en).
        """
        await self._request("POST", f"{self._conversation(conversation_id)}/tracker/events", "agent name",
                            json={"event": "slot", "name": slots.AGENT_NAME, "value": agent_name})
        await self._request("POST", f"{self._conversation(conversation_id)}/execute", "agent joined",
                            params={"output_channel": "latest"}, json={"name": "action_agent_joined"})

    async def take_pending_request(self, conversation_id: str, slots: Dict[str, Any], response: str) -> None:
        """For a request the service opens late (handoff/pending.py): pauses the bot, records
        the case in the slots and tells the customer the wait with ``response`` (its values are
        among ``slots``).

        Rasa renders the response itself, in the conversation's language: this works while the
        action server is down too.
        """
        events = [{"event": "slot", "name": name, "value": value} for name, value in slots.items()]
        await self._request("POST", f"{self._conversation(conversation_id)}/tracker/events", "pending request",
                            params={"output_channel": "latest"}, json=events + [{"event": "pause"}])
        await self._request("POST", f"{self._conversation(conversation_id)}/execute", "honest wait",
                            params={"output_channel": "latest"}, json={"name": response})

    async def tracker(self, conversation_id: str) -> Dict[str, Any]:
        """The conversation's tracker (slots, events, latest input channel)."""
        tracker = await self._request("GET", f"{self._conversation(conversation_id)}/tracker", "tracker")
        if not isinstance(tracker, dict):
            raise RasaError("Rasa returned no tracker")
        return tracker

