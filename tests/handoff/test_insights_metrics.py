"""Prometheus metrics of the handoff service: scraped after two escalations, the queue is two
cases long and their waits are in the histogram; the endpoint wants the scraper's token."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.handoff.conftest import HANDOFF_ENVIRONMENT

if not HANDOFF_ENVIRONMENT:  # the bot's Python 3.10 has no FastAPI: these run in .venv-handoff
    pytest.skip("handoff environment only", allow_module_level=True)

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.fakes.packets import packet  # noqa: E402
from tests.handoff.conftest import API_TOKEN, Clock, Service  # noqa: E402

SCRAPER = {"Authorization": "Bearer scraper-token-0123456789abcdef"}


@pytest.fixture(autouse=True)
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_METRICS_TOKEN", SCRAPER["Authorization"].split()[1])

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.asyncio
async def test_two_escalations_show_a_queue_of_two_and_their_wait(service: Service, clock: Clock) -> None:
    clock.set(T0)
    bot = service.bot()
    assert (await bot.post("/api/cases", json=packet("metrics-one"))).status_code == 201
    clock.set(T0 + timedelta(seconds=60))
    assert (await bot.post("/api/cases", json=packet("metrics-two", language="en"))).status_code == 201
    clock.set(T0 + timedelta(seconds=150))

    response = await service.client().get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("helder_handoff_queue_length", ())] == 2
    assert found[("helder_handoff_cases", (("state", "queued"),))] == 2
    assert found[("helder_handoff_cases", (("state", "human"),))] == 0
    # Waited 150 s and 90 s so far.
    assert found[("helder_handoff_queue_wait_seconds_count", ())] == 2
    assert found[("helder_handoff_queue_wait_seconds_sum", ())] == 240
    assert found[("helder_handoff_queue_wait_seconds_bucket", (("le", "60.0"),))] == 0
    assert found[("helder_handoff_queue_wait_seconds_bucket", (("le", "120.0"),))] == 1
    assert found[("helder_handoff_queue_wait_seconds_bucket", (("le", "300.0"),))] == 2
    assert found[("helder_handoff_oldest_wait_seconds", ())] == 150
    # The bot's two handoff calls were timed, by route template (never by raw path).
    assert found[("helder_handoff_http_request_seconds_count",
                  (("method", "POST"), ("route", "/api/cases"), ("status", "201")))] == 2
    assert ("helder_handoff_event_consumer_lag", (("group", "handoff"),)) in found
    assert ("helder_handoff_event_consumer_lag", (("group", "insights"),)) in found


@pytest.mark.asyncio
async def test_claiming_empties_the_queue_and_rasa_calls_are_timed(service: Service, clock: Clock) -> None:
    clock.set(T0)
    case_id = (await (service.bot()).post("/api/cases", json=packet("metrics-claim"))).json()["case_id"]
    eva = await service.agent("eva")
    assert (await eva.post(f"/api/cases/{case_id}/claim")).status_code == 200
    found = samples((await service.client().get("/metrics", headers=SCRAPER)).text)
    assert found[("helder_handoff_queue_length", ())] == 0
    assert found[("helder_handoff_cases", (("state", "human"),))] == 1
    # The claim announced the agent to (the fake) Rasa: two calls, both answered.
    assert found[("helder_handoff_rasa_call_seconds_count", (("outcome", "ok"),))] >= 2
    assert found[("helder_handoff_rasa_call_errors_total", ())] == 0


@pytest.mark.asyncio
async def test_the_metrics_need_the_scrapers_token(service: Service) -> None:
    client = service.client()
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong-token"})).status_code == 401
    supervisor = await service.agent("tom")  # a signed-in session is no scraper token
    assert (await supervisor.get("/metrics")).status_code == 401
    # Nor is the bot's token.
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})).status_code == 401


@pytest.mark.asyncio
async def test_without_a_configured_token_nobody_scrapes(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDOFF_METRICS_TOKEN")
    for header in ("", "Bearer", "Bearer "):
        assert (await service.client().get("/metrics", headers={"Authorization": header})).status_code == 401
