"""Schemathesis against the handoff service's own OpenAPI: no generated request gets a 5xx.

The app runs in-process (schemathesis' ASGI transport, which also runs its lifespan) on the
private Redis with the fake Rasa, signed in the way real callers are: the bot's bearer token and an
agent's session cookie with its CSRF token on every request, so the generated requests reach the
handlers instead of stopping at 401/403. ``/auth/logout`` is left out (it would end the session the
other operations run with). A known case and conversation are seeded so that some generated ids
hit real data; the generator replaces path ids with them now and then.

Deterministic (derandomize, no example database) and bounded: a few dozen examples per operation.
"""

from __future__ import annotations

import asyncio
from unittest import SkipTest

import pytest

from tests.fakes.packets import packet
from tests.handoff.conftest import API_TOKEN, HANDOFF_ENVIRONMENT, NAMES, PASSWORDS, RASA_SECRET, SESSION_SECRET

if not HANDOFF_ENVIRONMENT:  # pragma: no cover - collected only in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

import redis as sync_redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from redis.asyncio import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from handoff.agents import add_agent
from handoff.app import create_app
from handoff.settings import Settings
from handoff.store import Store

pytestmark = pytest.mark.timeout(300)
SEEDED_CONVERSATION = "conv-fuzz"
EXCLUDED_PATHS = ("/auth/logout",)


@pytest.fixture(scope="module")
def handoff_schema(redis_url, fake_rasa_server):
    config = Settings(
        env="test", redis_url=redis_url, rasa_url=fake_rasa_server.url, rasa_jwt_secret=RASA_SECRET,
        api_token=API_TOKEN, session_secret=SESSION_SECRET, average_handling_minutes=6, rasa_timeout_seconds=3,
    )
    plain = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    plain.flushdb()

    async def add_eva() -> None:
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            await add_agent(Store(redis, config), "eva", NAMES["eva"], PASSWORDS["eva"])
        finally:
            await redis.aclose()

    asyncio.run(add_eva())
    app = create_app(config, start_consumer=False)
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    with asgi.get_client(app) as client:
        signed_in = client.post("/auth/login", json={"username": "eva", "password": PASSWORDS["eva"]})
        assert signed_in.status_code == 200, signed_in.text
        cookie = client.cookies.get("handoff_session")
        opened = client.post("/api/cases", json=packet(SEEDED_CONVERSATION),
                             headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert opened.status_code == 201, opened.text
    auth = {
        "Authorization": f"Bearer {API_TOKEN}",
        "X-CSRF-Token": signed_in.json()["csrf_token"],
        "Cookie": f"handoff_session={cookie}",
    }
    ids = {"case_id": opened.json()["case_id"], "conversation_id": SEEDED_CONVERSATION}
    yield schema, auth, ids
    asgi.shutdown_lifespans()  # the app's lifespan ends before the session's Redis does
    fake_rasa_server.reset()
    plain.flushdb()
    plain.close()


def operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in EXCLUDED_PATHS:
            yield operation


# schemathesis' own pytest plugin (``from_fixture``/``parametrize``) does not work with pytest 9, so
# each operation's strategies are driven with plain hypothesis, positive and negative data alike.
def test_no_generated_request_gets_a_server_error(handoff_schema):
    schema, auth, ids = handoff_schema
    fuzz = settings(max_examples=20, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))
    seen = 0
    for operation in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @fuzz
            @given(case=strategy, aim=st.booleans())
            def run(case, aim):
                for name in list(case.path_parameters or {}):
                    if aim and name in ids:  # some examples hit the seeded case / conversation
                        case.path_parameters[name] = ids[name]
                case.call_and_validate(headers=dict(auth), checks=[not_a_server_error])

            try:
                run()
            except (Unsatisfiable, SkipTest):
                # Nothing to negate (no parameters, no body): the positive run covered it.
                assert mode is GenerationMode.NEGATIVE, operation.label
                continue
            seen += 1
    assert seen >= 20, "fewer operations than the API has: is the schema loaded?"
