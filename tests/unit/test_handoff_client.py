"""The action server's client of the handoff API (actions/handoff_client.py).

The answers come from ``httpx.MockTransport`` or, for the network's own behaviour (the token on
the wire, a refused connection, a slow answer, kept-alive connections), a small local HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from actions import handoff_client
from actions.handoff_client import HandoffClient, open_case

PACKET = {"conversation_id": "c-handoff-client", "reason": "request"}
ANSWER = {"case_id": "c_1", "status": "queued", "position": 2, "estimate_minutes": 12}


@pytest.fixture
def observed(monkeypatch):
    """The (seconds, ok) of every call, as the action server's metrics see them."""
    calls = []
    monkeypatch.setattr(handoff_client, "observe_handoff_call", lambda seconds, ok: calls.append((seconds, ok)))
    return calls


def mocked(handler) -> HandoffClient:
    return HandoffClient("http://handoff.test/", "secret", transport=httpx.MockTransport(handler))


def test_a_case_is_opened_with_the_packet_and_the_token(observed):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=ANSWER)

    assert asyncio.run(mocked(handler).open_case(PACKET)) == ANSWER
    [request] = seen
    assert request.method == "POST" and str(request.url) == "http://handoff.test/api/cases"
    assert request.headers["Authorization"] == "Bearer secret" and json.loads(request.content) == PACKET
    assert [ok for _, ok in observed] == [True]


def test_without_a_token_no_header_is_sent_and_the_refusal_is_no_case(observed):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"detail": "missing or wrong bot token"})

    client = HandoffClient("http://handoff.test", "", transport=httpx.MockTransport(handler))
    assert asyncio.run(client.open_case(PACKET)) is None
    assert "Authorization" not in seen[0].headers and [ok for _, ok in observed] == [False]


@pytest.mark.parametrize("answer", [
    httpx.Response(503, json={"detail": "storage unavailable"}),
    httpx.Response(401, json={"detail": "unauthorised"}),
    httpx.Response(200, text="<html>a proxy's page</html>"),
], ids=["5xx", "4xx", "not-json"])
def test_an_unusable_answer_is_no_case(answer, observed, caplog):
    with caplog.at_level(logging.ERROR, logger="actions.handoff_client"):
        assert asyncio.run(mocked(lambda request: answer).open_case(PACKET)) is None
    assert "handoff service unavailable for c-handoff-client" in caplog.text
    assert [ok for _, ok in observed] == [False]


def test_a_timeout_is_no_case(observed, caplog):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with caplog.at_level(logging.ERROR, logger="actions.handoff_client"):
        assert asyncio.run(mocked(handler).open_case(PACKET)) is None
    assert "handoff service unavailable for c-handoff-client: timed out" in caplog.text
    assert [ok for _, ok in observed] == [False]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_no_case(monkeypatch, observed, caplog):
    monkeypatch.setenv("HANDOFF_URL", f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.ERROR, logger="actions.handoff_client"):
        assert asyncio.run(open_case(PACKET)) is None
    assert "handoff service unavailable for c-handoff-client" in caplog.text
    assert [ok for _, ok in observed] == [False]


@pytest.fixture
def handoff_server(monkeypatch):
    """A local handoff service: records each request's token and client port; ``delay`` slows it."""
    seen, settings = [], {"delay": 0.0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection open for the next request

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers["Authorization"], self.client_address[1]))
            time.sleep(settings["delay"])
            body = json.dumps(ANSWER).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HANDOFF_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("HANDOFF_API_TOKEN", "token-from-the-environment")
    yield seen, settings, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def current_client() -> HandoffClient:
    return handoff_client.handoff_client()


def test_one_client_per_loop_reuses_its_connection(handoff_server):
    seen, _, _ = handoff_server

    async def two_handoffs():
        first = handoff_client.handoff_client()
        answers = [await open_case(PACKET), await open_case(PACKET)]
        return first, handoff_client.handoff_client(), answers

    first, second, answers = asyncio.run(two_handoffs())
    assert first is second and answers == [ANSWER, ANSWER]
    (token, port), (_, same_port) = seen
    assert token == "Bearer token-from-the-environment" and port == same_port
    # Another loop (a test's own asyncio.run) gets a client of its own: connections stay on their loop.
    assert asyncio.run(current_client()) is not first


def test_the_client_follows_the_configured_service(handoff_server, monkeypatch):
    async def client_after_moving():
        before = handoff_client.handoff_client()
        monkeypatch.setenv("HANDOFF_URL", "http://127.0.0.1:1")
        return before, handoff_client.handoff_client()

    before, after = asyncio.run(client_after_moving())
    assert after is not before and after.base_url == "http://127.0.0.1:1"


def test_a_slow_service_times_out(handoff_server, observed):
    _, settings, url = handoff_server
    settings["delay"] = 2.0
    started = time.monotonic()
    assert asyncio.run(HandoffClient(url, "secret", timeout=0.3).open_case(PACKET)) is None
    assert time.monotonic() - started < 1.5 and [ok for _, ok in observed] == [False]
