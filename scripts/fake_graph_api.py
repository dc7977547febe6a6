"""A fake of the WhatsApp Cloud API's send endpoint, on loopback, for tests and benchmarks.

It accepts ``POST <base>/<phone number id>/messages`` like graph.facebook.com does, answers
with a message id, and records every request it receives (method, path, headers, JSON body,
time). Point the channel's ``graph_api_url`` at :attr:`FakeGraphAPI.url`.

As a library::

    graph = FakeGraphAPI(access_token="secret").start()
    ...  # the assistant sends messages
    graph.wait_for(lambda: graph.texts("31612345678"))
    replies_after(graph, "31612345678", before=0)  # what it sent, once it is quiet
    graph.stop()

Standalone (prints one JSON line per request): ``python scripts/fake_graph_api.py --port 8089``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

API_VERSION = "v19.0"


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.monotonic)


class FakeGraphAPI:
    """The WhatsApp Cloud API /messages endpoint on 127.0.0.1, in a background thread.

    Args:
        access_token: when set, requests without ``Authorization: Bearer <token>`` get Meta's
            401 OAuth error.
        port: 0 for a free port.
        on_request: called with every recorded request (from the server thread).
    """

    def __init__(self, access_token: Optional[str] = None, port: int = 0,
                 on_request: Optional[Callable[[RecordedRequest], None]] = None) -> None:
        self.access_token = access_token
        self.requests: List[RecordedRequest] = []
        self._failures: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._on_request = on_request
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to use as graph_api_url (with the API version, no trailing slash)."""
        return f"http://127.0.0.1:{self.port}/{API_VERSION}"

    def start(self) -> FakeGraphAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-graph-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGraphAPI:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # -- scripting and reading -------------------------------------------------------------
    def fail_next(self, status: int = 400, code: int = 131047,
                  message: str = "Re-engagement message", retry_after: Optional[str] = None) -> None:
        """The next /messages request gets a Graph API error instead of success (with a
        ``Retry-After`` header when ``retry_after`` is given, as for a 429 or a 503)."""
        with self._lock:
            self._failures.append({"status": status, "code": code, "message": message, "retry_after": retry_after})

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    def messages(self, to: Optional[str] = None) -> List[Dict[str, Any]]:
        """JSON bodies POSTed to /messages, optionally only those to one wa_id, in order."""
        with self._lock:
            bodies = [r.body for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]
        return [b for b in bodies if isinstance(b, dict) and (to is None or b.get("to") == to)]

    def texts(self, to: Optional[str] = None) -> List[str]:
        """The text bodies of the text messages sent (to one wa_id)."""
        return [m["text"]["body"] for m in self.messages(to) if m.get("type") == "text"]

    def sent_text(self, to: str, text: str) -> Optional[RecordedRequest]:
        """The first recorded POST to /messages carrying text message ``text`` to ``to``, if any
        (its ``received_at`` says when it arrived, on this process's monotonic clock)."""
        with self._lock:
            recorded = list(self.requests)
        for request in recorded:
            body = request.body
            if (request.method == "POST" and request.path.endswith("/messages") and isinstance(body, dict)
                    and body.get("to") == to and body.get("type") == "text"
                    and (body.get("text") or {}).get("body") == text):
                return request
        return None

    def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Polls ``condition`` until it returns something truthy; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"fake Graph API: condition not met within {timeout}s; got {self.messages()}")

    # -- HTTP --------------------------------------------------------------------------------
    def _handler_class(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, payload: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake._record(self, None)
                self._reply(200, {"status": "ok"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                status, payload, *headers = fake._answer(self, body)
                self._reply(status, payload, *headers)

        return Handler

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> RecordedRequest:
        request = RecordedRequest(handler.command, handler.path, dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(request)
        if self._on_request:
            self._on_request(request)
        return request

    def _answer(self, handler: BaseHTTPRequestHandler, body: Any) -> tuple:
        self._record(handler, body)
        if self.access_token is not None and handler.headers.get("Authorization") != f"Bearer {self.access_token}":
            return 401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        if not handler.path.endswith("/messages"):
            return 404, {"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}}
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp" or not body.get("to"):
            return 400, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            headers = {"Retry-After": failure["retry_after"]} if failure.get("retry_after") is not None else {}
            return failure["status"], {"error": {"message": failure["message"], "type": "OAuthException",
                                                 "code": failure["code"]}}, headers
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": f"wamid.fake{next(self._ids):06d}"}],
        }


def replies_after(graph: FakeGraphAPI, wa_id: str, before: int, quiet: float = 1.5,
                  timeout: float = 60.0) -> List[Dict[str, Any]]:
    """The messages sent to ``wa_id`` after the first ``before``, once the assistant is quiet
    (no new one for ``quiet`` seconds); AssertionError if none arrives within ``timeout``."""
    graph.wait_for(lambda: len(graph.messages(wa_id)) > before, timeout=timeout)
    count, deadline = len(graph.messages(wa_id)), time.monotonic() + quiet
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if len(graph.messages(wa_id)) != count:
            count, deadline = len(graph.messages(wa_id)), time.monotonic() + quiet
    return graph.messages(wa_id)[before:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-token", default=None, help="require this bearer token")
    args = parser.parse_args()

    def show(request: RecordedRequest) -> None:
        print(json.dumps({"method": request.method, "path": request.path, "body": request.body}), flush=True)

    graph = FakeGraphAPI(access_token=args.access_token, port=args.port, on_request=show).start()
    print(f"fake Graph API at {graph.url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        graph.stop()


if __name__ == "__main__":
    main()
