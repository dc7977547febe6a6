"""The handoff service masks personal data in its log output (contract/log_masking.py)."""

from __future__ import annotations

import io
import logging

import pytest

from handoff.app import create_app
from handoff.settings import Settings
from tests.handoff.conftest import running


@pytest.mark.asyncio
async def test_service_log_output_is_masked(settings: Settings, redis_sync) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)   # what uvicorn's dictConfig sets up before start-up
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    access = logging.getLogger("uvicorn.access.test")
    access.addHandler(handler)
    access.propagate = False
    try:
        async with running(create_app(settings)):
            logging.getLogger("uvicorn.access.test").warning(
                "POST /x?email=%s phone=%s", "pieter.janssens@example.be", "+32 470 12 34 56")
        logging.getLogger("uvicorn.access.test").warning("iban %s, postcode 2000", "BE68 5390 0754 7034")
    finally:
        access.removeHandler(handler)
    out = stream.getvalue()
    assert "POST /x?email=[email] phone=[phone]" in out
    assert "iban [iban], postcode [postcode]" in out
    assert "example.be" not in out and "470 12" not in out
