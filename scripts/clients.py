"""Clients for end-to-end tests and benchmarks: a web customer on socket.io and an agent."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

import requests
import socketio
import websockets


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Polls ``condition`` until it returns something truthy; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class WebCustomer:
    """A customer on Rasa's socket.io channel (the web widget's transport)."""

    def __init__(self, rasa_url: str, metadata: Optional[Dict[str, Any]] = None, transport: str = "polling") -> None:
        """Connects and asks for a session. ``transport``: "polling" (HTTP long-polling) or
        "websocket" (what the widget uses once socket.io has upgraded the connection)."""
        self.sender = uuid.uuid4().hex
        self.metadata = metadata or {}
        self.received: List[Dict[str, Any]] = []
        self.received_at: List[float] = []
        self._client = socketio.Client(reconnection=False)
        self._client.on("bot_uttered", self._on_bot)
        confirmed = threading.Event()
        self._client.on("session_confirm", lambda *_: confirmed.set())
        self._client.connect(rasa_url, socketio_path="/socket.io", transports=[transport], wait_timeout=20)
        self._client.emit("session_request", {"session_id": self.sender})
        assert confirmed.wait(20), "no session_confirm from Rasa"

    def _on_bot(self, message: Dict[str, Any]) -> None:
        self.received.append(message)
        self.received_at.append(time.monotonic())

    def texts(self) -> List[str]:
        return [m.get("text", "") for m in self.received]

    def say(self, text: str, quiet: float = 1.0, expect_reply: bool = True) -> List[str]:
        """Sends a message; returns the replies that arrive (until ``quiet`` seconds of silence)."""
        before = len(self.received)
        self._client.emit("user_uttered", {"message": text, "session_id": self.sender, "customData": self.metadata})
        if expect_reply:
            wait_until(lambda: len(self.received) > before, timeout=30)
        last = len(self.received)
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.received) != last:
                last, deadline = len(self.received), time.monotonic() + quiet
        return self.texts()[before:]

    def close(self) -> None:
        self._client.disconnect()


class Agent:
    """An agent using the handoff service's API (what the console's JavaScript does)."""

    def __init__(self, handoff_url: str, username: str, password: str) -> None:
        self.url = handoff_url
        self.session = requests.Session()
        response = self.session.post(f"{handoff_url}/auth/login", json={"username": username, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]
        self.pushed: List[Dict[str, Any]] = []
        self.pushed_at: List[float] = []
        self._socket_thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=10)

    def post(self, path: str, body: Optional[Dict[str, Any]] = None) -> requests.Response:
        return self.session.post(f"{self.url}{path}", json=body or {}, headers={"X-CSRF-Token": self.csrf}, timeout=30)

    def open_console_socket(self) -> None:
        """Keeps the console's websocket open (which also makes the agent available)."""
        ready = threading.Event()
        ws_url = self.url.replace("http://", "ws://") + "/ws"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)

        async def listen() -> None:
            # websockets 10 (Rasa's pin) exports connect lazily, out of mypy's sight.
            async with websockets.connect(ws_url, extra_headers={"Cookie": cookie}) as socket:  # type: ignore[attr-defined]
                ready.set()
                while not self._stop.is_set():
                    try:
                        raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    self.pushed.append(json.loads(raw))
                    self.pushed_at.append(time.monotonic())

        self._socket_thread = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
        self._socket_thread.start()
        assert ready.wait(10), "console websocket did not open"

    def pushed_lines(self, conversation_id: str) -> List[Dict[str, Any]]:
        return [p["line"] for p in list(self.pushed) if p.get("type") == "line" and p.get("conversation_id") == conversation_id]

    def close(self) -> None:
        self._stop.set()
        if self._socket_thread:
            self._socket_thread.join(timeout=5)
