"""Shared fixtures: a private Redis server on a free port (never the machine's shared one)."""

import shutil

import pytest

from scripts.stack import RedisServer


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server of our own with AOF, so tests never touch someone else's data."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian/Ubuntu: sudo apt install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()
