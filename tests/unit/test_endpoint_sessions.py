"""The Rasa server keeps one HTTP session per endpoint (bot/endpoint_sessions.py): calls to the
action server reuse a kept-alive connection instead of connecting anew each time."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot import endpoint_sessions

ORIGINAL_SESSION = EndpointConfig.session


@pytest.fixture
def kept(monkeypatch):
    """The patch installed on EndpointConfig for one test only."""
    monkeypatch.setattr(EndpointConfig, "session", endpoint_sessions._kept_sessions())
    monkeypatch.setattr(endpoint_sessions, "_sessions", {})  # this test's sessions only
    yield
    assert not endpoint_sessions._sessions, "a test left a session open"


async def _server(connections: List[object]) -> web.AppRunner:
    async def webhook(request: web.Request) -> web.Response:
        connections.append(request.transport)  # one transport per TCP connection
        return web.json_response({"events": [], "responses": [], "echo": (await request.json())["n"]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _port(runner: web.AppRunner) -> int:
    return runner.addresses[0][1]


def test_calls_to_one_endpoint_share_one_connection(kept):
    async def scenario() -> None:
        connections: List[object] = []
        runner = await _server(connections)
        try:
            endpoint = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/webhook")
            answers = [await endpoint.request(json={"n": n}, method="post") for n in range(5)]
            assert [a["echo"] for a in answers] == [0, 1, 2, 3, 4]
            assert len(connections) == 5 and len({id(c) for c in connections}) == 1
            # An equal configuration (Rasa makes a new one for the same URL) shares the session.
            again = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/webhook")
            await again.request(json={"n": 5}, method="post")
            assert len({id(c) for c in connections}) == 1
        finally:
            await endpoint_sessions.close_all()
            await runner.cleanup()

    asyncio.run(scenario())


def test_without_the_patch_every_call_connects_anew(monkeypatch):
    async def scenario() -> None:
        connections: List[object] = []
        runner = await _server(connections)
        try:
            endpoint = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/webhook")
            for n in range(3):
                await endpoint.request(json={"n": n}, method="post")
            assert len({id(c) for c in connections}) == 3
        finally:
            await runner.cleanup()

    monkeypatch.setattr(EndpointConfig, "session", ORIGINAL_SESSION)
    asyncio.run(scenario())


def test_a_closed_session_is_replaced_and_each_event_loop_has_its_own(kept):
    seen = []

    async def one_call(port: int) -> None:
        endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")
        async with endpoint.session() as session:
            seen.append(session)
        await endpoint.request(json={"n": 1}, method="post")
        await endpoint_sessions.close_all()
        assert seen[-1].closed
        async with endpoint.session() as session:
            assert session is not seen[-1] and not session.closed
        await endpoint_sessions.close_all()

    async def scenario() -> None:
        runner = await _server([])
        try:
            await one_call(_port(runner))
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second event loop (a second Sanic worker) gets a new session
    assert seen[0] is not seen[1]


def test_a_request_error_still_raises_as_rasa_does(kept):
    from rasa.utils.endpoints import ClientResponseError

    async def scenario() -> None:
        runner = await _server([])
        try:
            endpoint = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/missing")
            with pytest.raises(ClientResponseError):
                await endpoint.request(json={"n": 1}, method="post")
            # the session survives an error answer and serves the next call
            ok = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/webhook")
            assert (await ok.request(json={"n": 2}, method="post"))["echo"] == 2
        finally:
            await endpoint_sessions.close_all()
            await runner.cleanup()

    asyncio.run(scenario())


def test_this_side_closes_an_idle_connection_before_the_action_server_does(kept):
    from sanic.config import DEFAULT_CONFIG

    assert endpoint_sessions.KEEPALIVE_SECONDS < DEFAULT_CONFIG["KEEP_ALIVE_TIMEOUT"]

    async def scenario() -> None:
        endpoint = EndpointConfig(url="http://127.0.0.1:9/webhook", headers={"X-Test": "1"},
                                  basic_auth={"username": "u", "password": "p"})
        async with endpoint.session() as session:
            assert session.connector is not None
            assert session.connector._keepalive_timeout == endpoint_sessions.KEEPALIVE_SECONDS
            assert session.headers["X-Test"] == "1" and session.auth is not None
        await endpoint_sessions.close_all()

    asyncio.run(scenario())


def test_the_kept_session_writes_the_calls_json_with_fast_json(kept, monkeypatch):
    written = []
    monkeypatch.setattr(endpoint_sessions.fast_json, "dumps", lambda obj: written.append(obj) or '{"n": 7}')

    async def scenario() -> None:
        runner = await _server([])
        try:
            endpoint = EndpointConfig(url=f"http://127.0.0.1:{_port(runner)}/webhook")
            answer = await endpoint.request(json={"n": 3}, method="post")
            assert written == [{"n": 3}] and answer["echo"] == 7  # the server got what fast_json wrote
        finally:
            await endpoint_sessions.close_all()
            await runner.cleanup()

    asyncio.run(scenario())
