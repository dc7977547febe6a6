"""The FastAPI application: ``create_app()`` and the module-level ``app`` uvicorn serves.

Nothing connects at import: Redis, the Rasa client, the event consumer and the push hub are all
created in the lifespan and closed after it, so importing this module (tests, tools) is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import AsyncIterator, Optional

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from contract import log_masking
from contract.retention import retention_days
from handoff import __version__
from handoff.api import errors as api_errors
from handoff.api.deps import AgentDep, OptionalAgentDep
from handoff.api.routes import admin, auth, cases, conversations, insights, public, ws
from handoff.consumer import EventConsumer, Hub, stop_task
from handoff.insights import Aggregator
from handoff.insights_consumer import InsightsConsumer
from handoff import metrics as metrics_routes
from handoff.metrics import Metrics, TimedTransport, observe
from handoff.models import Health
from handoff.pending import PendingRequests
from handoff.erasure import Erasure
from handoff.rasa_client import RasaClient
from handoff.settings import Settings, get_settings
from handoff.store import Clock, Store
from handoff.workflow import CaseWorkflow

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(
    settings: Optional[Settings] = None, *, rasa_transport: Optional[httpx.AsyncBaseTransport] = None,
    start_consumer: bool = True, clock: Optional[Clock] = None,
) -> FastAPI:
    """Builds the app.

    Args:
        settings: defaults to :func:`get_settings` (read from the environment at start-up, not here).
        rasa_transport: an httpx transport for the Rasa client (tests).
        start_consumer: read the event stream (off only for tests that drive the consumer themselves).
        clock: the current time for cases and promises (tests pass a controllable one).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        # uvicorn has configured its loggers by now: mask personal data in every handler's output.
        log_masking.install()
        # socket_timeout above the consumer's 2 s XREADGROUP BLOCK so a quiet stream is no error.
        # After a Redis restart every pooled connection is stale: a command that meets one is
        # retried on a fresh connection instead of failing the request with a 503 (redis-py's
        # asyncio client retries nothing by default). Only connection errors: after a timeout
        # the command may have run, and not every command is idempotent.
        redis = Redis.from_url(config.redis_url, decode_responses=True, socket_timeout=15,
                               health_check_interval=30,
                               retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3,
                                           supported_errors=(RedisConnectionError,)))
        store = Store(redis, config, clock) if clock else Store(redis, config)
        rasa = RasaClient(config.rasa_url, config.rasa_jwt_secret.get_secret_value(),
                          timeout=config.rasa_timeout_seconds,
                          transport=TimedTransport(rasa_transport or httpx.AsyncHTTPTransport(), metrics))
        hub = Hub(redis)
        try:
            await hub.start()
        except (RedisError, OSError) as error:
            logger.warning("Redis not reachable at start-up (%s); retrying in the background", type(error).__name__)
        workflow = CaseWorkflow(store, rasa, hub)
        pending = PendingRequests(redis, store, hub, rasa, workflow=workflow)
        insights = Aggregator(redis, retention_days=config.retention_days if config.retention_days is not None
                              else retention_days(), clock=store.clock)
        # HANDOFF_INSIGHTS=0 turns the aggregation off (benchmarks compare with and without it).
        insights.enabled = os.environ.get("HANDOFF_INSIGHTS", "1").strip().lower() not in ("0", "false", "off", "no")
        consumer = EventConsumer(redis, store, hub, on_pending=pending.wake)
        insights_consumer = InsightsConsumer(redis, insights)
        erasure = Erasure(redis, days=config.retention_days, tracker_key_prefix=config.tracker_key_prefix,
                          clock=store.clock)
        app.state.settings, app.state.store, app.state.rasa, app.state.hub = config, store, rasa, hub
        app.state.consumer, app.state.erasure, app.state.pending = consumer, erasure, pending
        app.state.workflow = workflow
        app.state.insights, app.state.insights_consumer = insights, insights_consumer
        tasks = [asyncio.create_task(hub.run(), name="handoff-push"),
                 asyncio.create_task(erasure.run_periodically(), name="handoff-retention"),
                 asyncio.create_task(pending.run(), name="handoff-pending")]
        if start_consumer:
            tasks.append(asyncio.create_task(consumer.run(), name="handoff-consumer"))
            tasks.append(asyncio.create_task(insights_consumer.run(), name="handoff-insights"))
        logger.info("handoff service %s started (consumer %s)", __version__, consumer.name)
        try:
            yield
        finally:
            hub.stopping = consumer.stopping = pending.stopping = insights_consumer.stopping = True
            for task in tasks:
                await stop_task(task)
            await consumer.leave()
            await insights_consumer.leave()
            await hub.aclose()
            await rasa.aclose()
            await redis.aclose()

    # The API description is for signed-in agents (it maps every route); no Swagger page (it
    # would load its scripts from a CDN): handoff/API.md is the human-readable version.
    app = FastAPI(title="Handoff service", version=__version__, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None)
    metrics = app.state.metrics = Metrics()

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: AgentDep) -> JSONResponse:
        """The OpenAPI description of the API."""
        return JSONResponse(app.openapi())

    api_errors.install(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        started = time.perf_counter()
        response: Response = await call_next(request)
        observe(metrics, request, response.status_code, time.perf_counter() - started)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/health", response_model=Health, tags=["health"])
    async def health(request: Request) -> JSONResponse:
        """Up, whether Redis answers, and whether the push subscription is live (see Hub)."""
        try:
            redis_ok = bool(await request.app.state.store.redis.ping())
        except (RedisError, OSError):
            redis_ok = False
        pushes_ok = request.app.state.hub.live
        ready = redis_ok and pushes_ok
        body = Health(status="ok" if ready else "degraded", redis=redis_ok, pushes=pushes_ok)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/", include_in_schema=False)
    async def console(me: OptionalAgentDep) -> Response:
        """The console for signed-in agents; everyone else goes to the sign-in page."""
        if me is None:
            return RedirectResponse("/login", status_code=303)
        return _page("index.html")

    @app.get("/login", include_in_schema=False)
    async def login_page() -> Response:
        """The sign-in page."""
        return _page("login.html")

    app.include_router(auth.router)
    app.include_router(cases.router)
    app.include_router(conversations.router)
    app.include_router(ws.router)
    app.include_router(public.router)
    app.include_router(admin.router)
    app.include_router(insights.router)
    app.include_router(metrics_routes.router)
    with contextlib.suppress(OSError):
        STATIC_DIR.mkdir(exist_ok=True)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app


def _page(name: str) -> Response:
    """An HTML page of the console, never cached (it changes with each release)."""
    path = STATIC_DIR / name
    if not path.is_file():
        return PlainTextResponse(f"console page {name} is not installed", status_code=503)
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-store"})


app = create_app()
