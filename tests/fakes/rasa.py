"""Rasa's HTTP API as far as the handoff service calls it, on a loopback port.

It answers like Rasa 3.6 with ``--enable-api --jwt-secret``: only an admin JWT signed with the
secret gets in (else 401); ``GET .../tracker`` returns the conversation's tracker (set by a test in
:attr:`FakeRasa.trackers`, else an empty one), ``POST .../tracker/events`` the tracker and
``POST .../execute`` the tracker and no messages. Every request is recorded, refused ones too, and a
test can make requests fail (:attr:`FakeRasa.fail_status`, :attr:`FakeRasa.fail_when`) or drop the
connection (:attr:`FakeRasa.drop_connections`).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, TypedDict
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

CONVERSATION_PATH = re.compile(r"^/conversations/([^/]+)/")


class RasaCall(TypedDict):
    """One request the handoff service made to Rasa."""

    method: str
    path: str  # unquoted
    query: Dict[str, str]  # the first value of each parameter
    json: Any  # the parsed body (the raw text if it is not JSON), None without one
    role: Optional[str]  # the JWT's user role if it is signed with the secret, else None


def conversation_of(raw_path: str) -> Optional[str]:
    """The conversation a request is about, from its path as sent (the id quoted in it)."""
    match = CONVERSATION_PATH.match(raw_path)
    return unquote(match.group(1)) if match else None


def empty_tracker(conversation_id: str) -> Dict[str, Any]:
    """What Rasa returns for a conversation it knows nothing about."""
    return {"sender_id": conversation_id, "slots": {}, "events": [], "paused": False,
            "latest_message": {"text": None, "intent": {}, "entities": []},
            "latest_input_channel": None, "latest_action_name": "action_listen"}


class FakeRasa:
    """Serves from construction until :meth:`close`; :attr:`url` is its base URL."""

    def __init__(self, jwt_secret: str) -> None:
        self.jwt_secret = jwt_secret
        self.requests: List[RasaCall] = []
        self.trackers: Dict[str, Dict[str, Any]] = {}
        # Answers every request with this status (after recording it).
        self.fail_status: Optional[int] = None
        # Fails (HTTP 500, after recording it) each request this returns True for: one step of a
        # workflow failing while the others work.
        self.fail_when: Optional[Callable[[RasaCall], bool]] = None
        self.drop_connections = False
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-rasa", daemon=True)
        self._thread.start()

    def tracker(self, conversation_id: str) -> Dict[str, Any]:
        """The tracker Rasa has for the conversation."""
        return self.trackers.get(conversation_id) or empty_tracker(conversation_id)

    def record(self, call: RasaCall) -> None:
        with self._lock:
            self.requests.append(call)

    def calls(self, conversation_id: Optional[str] = None) -> List[RasaCall]:
        """The recorded requests (about one conversation), oldest first."""
        with self._lock:
            found = list(self.requests)
        if conversation_id is None:
            return found
        return [call for call in found if call["path"].startswith(f"/conversations/{conversation_id}/")]

    def wait_for(self, conversation_id: str, predicate: Callable[[RasaCall], bool],
                 timeout: float = 10.0) -> RasaCall:
        """The first request about the conversation matching ``predicate``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls(conversation_id):
                if predicate(call):
                    return call
            time.sleep(0.05)
        seen = [(call["method"], call["path"], call["json"]) for call in self.calls(conversation_id)]
        raise AssertionError(f"Rasa did not get the expected request for {conversation_id}; got {seen}")

    def reset(self) -> None:
        """Forgets requests and trackers, works again."""
        with self._lock:
            self.requests.clear()
        self.trackers.clear()
        self.fail_status = None
        self.fail_when = None
        self.drop_connections = False

    def close(self) -> None:
        """Stops the server."""
        self.server.shutdown()
        self.server.server_close()


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _role(authorization: str, secret: str) -> Optional[str]:
    if not authorization.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(authorization.removeprefix("Bearer "), secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims.get("user", {}).get("role")


def _handler(fake: FakeRasa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

        def _handle(self) -> None:
            if fake.drop_connections:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            call: RasaCall = {
                "method": self.command, "path": unquote(parts.path),
                "query": {name: values[0] for name, values in parse_qs(parts.query).items()},
                "json": _parse_body(self.rfile.read(length) if length else b""),
                "role": _role(self.headers.get("Authorization", ""), fake.jwt_secret),
            }
            fake.record(call)
            if call["role"] != "admin":
                return self._reply(401, {"status": "failure", "reason": "NotAuthenticated",
                                         "message": "User has insufficient permission."})
            if fake.fail_status:
                return self._reply(fake.fail_status, {"message": "broken"})
            if fake.fail_when is not None and fake.fail_when(call):
                return self._reply(500, {"message": "broken"})
            conversation_id = conversation_of(parts.path)
            if conversation_id is None:
                return self._reply(404, {"status": "failure", "reason": "NotFound"})
            tracker = fake.tracker(conversation_id)
            if self.command == "GET" and call["path"].endswith("/tracker"):
                return self._reply(200, tracker)
            if self.command == "POST" and call["path"].endswith("/tracker/events"):
                return self._reply(200, tracker)
            if self.command == "POST" and call["path"].endswith("/execute"):
                return self._reply(200, {"tracker": tracker, "messages": []})
            return self._reply(404, {"status": "failure", "reason": "NotFound"})

        do_GET = _handle
        do_POST = _handle

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
