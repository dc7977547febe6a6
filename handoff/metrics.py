"""Prometheus metrics of the handoff service (``prometheus-client``), at ``GET /metrics``.

Live figures for operations (the insights page is the business view):

- ``helder_handoff_queue_length`` and ``helder_handoff_queue_wait_seconds`` (a histogram of how long
  each queued case has waited so far, read from Redis at every scrape, so it is right whichever
  instance is scraped), ``helder_handoff_oldest_wait_seconds``;
- ``helder_handoff_cases{state}``: cases by state (queued, human, bot, resolved);
- ``helder_handoff_event_consumer_lag{group}`` (entries not yet delivered to the consumer group:
  ``handoff``, the live consoles, and ``insights``) and ``helder_handoff_event_consumer_pending``
  (delivered, not yet acknowledged);
- ``helder_handoff_http_request_seconds{method,route,status}``: every API call, the bot's
  ``POST /api/cases`` (the handoff call) included; 5xx answers are the errors;
- ``helder_handoff_rasa_call_seconds{outcome}``: the service's calls to Rasa's HTTP API, and
  ``helder_handoff_rasa_call_errors_total``;
- ``helder_handoff_insights_cpu_seconds_total``: CPU the insights aggregation used in this process.

Protected like the rest of the service's machine API: ``Authorization: Bearer`` with
``HANDOFF_METRICS_TOKEN``, a token for the scraper alone (the bot's token opens only the bot's
routes; an agent's session is no scraper). Without it set, nobody can scrape.
Each app has its own registry (tests build several apps in one process).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from contract import keys

WAIT_BUCKETS = (15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _QueueWaits:
    """A collector for the queued cases' waits, refreshed by the scrape before it collects."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    def collect(self) -> Any:
        family = HistogramMetricFamily("helder_handoff_queue_wait_seconds",
                                       "How long each queued case has waited so far")
        buckets = [(str(float(bound)), sum(1 for w in self.waits if w <= bound)) for bound in WAIT_BUCKETS]
        buckets.append(("+Inf", len(self.waits)))
        family.add_metric([], buckets, sum(self.waits))
        yield family


class Metrics:
    """The service's metrics, on their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = Histogram("helder_handoff_http_request_seconds", "API calls by route and status",
                              ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rasa = Histogram("helder_handoff_rasa_call_seconds", "Calls to Rasa's HTTP API",
                              ["outcome"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rasa_errors = Counter("helder_handoff_rasa_call_errors", "Rasa calls that failed (no answer or 5xx)",
                                   registry=self.registry)
        self.queue_length = Gauge("helder_handoff_queue_length", "Cases waiting for a person", registry=self.registry)
        self.oldest_wait = Gauge("helder_handoff_oldest_wait_seconds", "How long the oldest queued case has waited",
                                 registry=self.registry)
        self.cases = Gauge("helder_handoff_cases", "Cases by state", ["state"], registry=self.registry)
        self.lag = Gauge("helder_handoff_event_consumer_lag", "Event-stream entries a consumer group has not read yet",
                         ["group"], registry=self.registry)
        self.pending = Gauge("helder_handoff_event_consumer_pending", "Event-stream entries read, not yet acknowledged",
                             ["group"], registry=self.registry)
        self.insights_cpu = Gauge("helder_handoff_insights_cpu_seconds_total",
                                  "CPU seconds the insights aggregation used in this process", registry=self.registry)
        self.queue_waits = _QueueWaits()
        self.registry.register(self.queue_waits)
        self._lock = asyncio.Lock()

    async def refresh(self, redis: Any, now: float, insights_cpu: float = 0.0) -> None:
        """Reads the live figures from Redis (one pipelined round trip, plus the queue's cases)."""
        pipe = redis.pipeline(transaction=False)
        pipe.zrange(keys.queue(), 0, -1, withscores=True)
        for state in keys.CASE_STATUSES:
            pipe.zcard(keys.cases_by_status(state))
        results = await pipe.execute()
        queued = results[0]
        waits = [max(0.0, now - float(score)) for _, score in queued]
        self.queue_waits.waits = waits
        self.queue_length.set(len(queued))
        self.oldest_wait.set(max(waits) if waits else 0)
        for state, count in zip(keys.CASE_STATUSES, results[1:]):
            self.cases.labels(state).set(count)
        groups: Dict[str, Tuple[int, int]] = {keys.EVENTS_GROUP: (0, 0), keys.INSIGHTS_GROUP: (0, 0)}
        try:
            for group in await redis.xinfo_groups(keys.EVENTS_STREAM):
                if group.get("name") in groups:
                    groups[group["name"]] = (int(group.get("lag") or 0), int(group.get("pending") or 0))
        except Exception:  # noqa: BLE001 - no stream yet: nothing lags
            pass
        for name, (lag, pending) in groups.items():
            self.lag.labels(name).set(lag)
            self.pending.labels(name).set(pending)
        self.insights_cpu.set(insights_cpu)

    async def exposition(self, redis: Any, now: float, insights_cpu: float = 0.0) -> bytes:
        """The text format, with the live figures read now."""
        async with self._lock:
            await self.refresh(redis, now, insights_cpu)
            return generate_latest(self.registry)


class TimedTransport(httpx.AsyncBaseTransport):
    """Wraps the Rasa client's transport: latency and errors of every call to Rasa."""

    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.metrics.rasa.labels("error").observe(time.perf_counter() - started)
            self.metrics.rasa_errors.inc()
            raise
        failed = response.status_code >= 500
        self.metrics.rasa.labels("error" if failed else "ok").observe(time.perf_counter() - started)
        if failed:
            self.metrics.rasa_errors.inc()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def scrape_token() -> str:
    """The token a scraper sends: ``HANDOFF_METRICS_TOKEN`` (none set: nobody may scrape)."""
    return (os.environ.get("HANDOFF_METRICS_TOKEN") or "").strip()


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus' text format; needs ``Authorization: Bearer <metrics token>``."""
    expected = scrape_token()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong metrics token", headers={"WWW-Authenticate": "Bearer"})
    state = request.app.state
    consumer: Optional[Any] = getattr(state, "insights_consumer", None)
    body = await state.metrics.exposition(state.store.redis, state.store.clock().timestamp(),
                                          getattr(consumer, "cpu_seconds", 0.0))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_of(request: Request) -> str:
    """The route template (``/api/cases/{case_id}``), never the raw path (ids would explode the labels)."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def observe(metrics_: Metrics, request: Request, status: int, seconds: float) -> None:
    """Records one API call."""
    metrics_.http.labels(request.method, route_of(request), str(status)).observe(seconds)


