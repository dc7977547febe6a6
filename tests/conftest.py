"""Shared fixtures: a private Redis server on a free port (never the machine's shared one)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from scripts.stack import free_port, redis_ping


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server of our own with AOF, so tests never touch someone else's data."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (Debian/Ubuntu: sudo apt install redis-server)")
    port = free_port()
    data_dir: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--appendonly", "yes",
         "--appendfsync", "everysec", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_ping(url):
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
