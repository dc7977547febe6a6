"""Redis restarted under the service: the first requests after it are answered, not 503.

After a restart every pooled connection is stale. redis-py's asyncio client retries nothing by
default, so each stale connection used to fail one request with "storage unavailable, try
again"; the service retries a command once more on a fresh connection (handoff/app.py). The
data itself surviving a restart (AOF) is tested against the whole stack in tests/chaos.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from handoff.app import create_app
from scripts.stack import RedisServer
from tests.fakes.packets import packet
from tests.handoff.conftest import running

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_no_request_fails_for_a_stale_connection_after_a_restart(tmp_path, settings, fake_rasa):
    redis = RedisServer(tmp_path / "redis")
    try:
        async with running(create_app(settings.model_copy(update={"redis_url": redis.url}),
                                      start_consumer=False)) as service:
            eva = await service.agent("eva")
            bot = service.bot()
            opened = await bot.post("/api/cases", json=packet("0" * 32))
            assert opened.status_code == 201, opened.text
            # Several connections in the pool, as under load.
            warm = await asyncio.gather(*(eva.get("/api/queue") for _ in range(8)))
            assert {r.status_code for r in warm} == {200}

            time.sleep(1.2)  # appendfsync everysec: the case is in the AOF
            redis.kill()
            time.sleep(0.5)
            redis.start()

            answers = await asyncio.gather(*(eva.get("/api/queue") for _ in range(8)))
            answers += [await eva.get(f"/api/cases/{opened.json()['case_id']}") for _ in range(8)]
            assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers if r.status_code != 200]
            assert any(c["conversation_id"] == "0" * 32 for c in answers[0].json()), "the case is gone"
    finally:
        redis.stop()
