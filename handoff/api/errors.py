"""The one place where errors become HTTP answers.

The store and the case workflow raise the domain errors of :mod:`handoff.errors` (and
:class:`~handoff.rasa_client.RasaError`, redis-py's ``RedisError``); none of them knows HTTP.
"""

from __future__ import annotations

import logging
from typing import Tuple, Type

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from handoff.errors import Conflict, HandoffError, NotAllowed, NotFound, RasaUnavailable
from handoff.rasa_client import RasaError

logger = logging.getLogger(__name__)

#: Each domain error's HTTP status (the first that matches, so subclasses come first).
STATUS_OF: Tuple[Tuple[Type[HandoffError], int], ...] = (
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (NotAllowed, status.HTTP_403_FORBIDDEN),
    (RasaUnavailable, status.HTTP_502_BAD_GATEWAY),
)


def status_of(error: HandoffError) -> int:
    """The HTTP status for a domain error (500 for one this table does not know)."""
    for kind, code in STATUS_OF:
        if isinstance(error, kind):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def install(app: FastAPI) -> None:
    """Registers the handlers: domain errors, Rasa failures (502), storage unavailable (503)."""

    @app.exception_handler(HandoffError)
    async def domain_error(_: Request, error: HandoffError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=status_of(error))

    @app.exception_handler(RasaError)
    async def rasa_error(_: Request, error: RasaError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status.HTTP_502_BAD_GATEWAY)

    @app.exception_handler(RedisError)
    async def redis_error(_: Request, error: RedisError) -> JSONResponse:
        # The traceback says which command met the error (its text holds no customer data).
        logger.error("Redis error: %s", type(error).__name__, exc_info=error)
        return JSONResponse({"detail": "storage unavailable, try again"},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
