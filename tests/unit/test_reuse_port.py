"""The Rasa server's worker processes each listen on a socket of their own (bot/reuse_port.py), so
the kernel spreads new connections over them; one process is served as before."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Counter, List

import pytest
import requests

from scripts.stack import free_port

ROOT = Path(__file__).resolve().parents[2]

# A Sanic app as Rasa runs it (app.run with workers), answering with the worker's process id.
APP = """
import os, sys
from sanic import Sanic, response
from bot import reuse_port
if sys.argv[2] == "patched":
    reuse_port.install()
app = Sanic("reuse_port_test")

@app.get("/")
async def pid(request):
    return response.text(str(os.getpid()))

app.run(host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[3]), access_log=False)
"""


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4, /proc/net/tcp: state 0A is LISTEN)."""
    with open("/proc/net/tcp") as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    return sum(1 for row in rows if int(row[1].split(":")[1], 16) == port and row[3] == "0A")


def serve(port: int, mode: str, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port), mode, str(workers)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while listening_sockets(port) < workers or not _answers(port):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.1)
    return proc


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=1).ok
    except requests.RequestException:
        return False


def who_answers(port: int, connections: int) -> Counter[str]:
    """The worker that answers each of ``connections`` connections, all open at once."""
    sockets: List[socket.socket] = []
    try:
        for _ in range(connections):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        for sock in sockets:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        answers = collections.Counter()
        for sock in sockets:
            answers[sock.recv(4096).decode().rsplit("\r\n", 1)[-1]] += 1
        return answers
    finally:
        for sock in sockets:
            sock.close()


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.mark.timeout(120)
def test_each_worker_listens_on_its_own_socket_and_gets_its_share_of_the_connections():
    port = free_port()
    proc = serve(port, "patched", workers=2)
    try:
        assert listening_sockets(port) == 2  # Sanic alone: one socket, shared by the workers
        answers = who_answers(port, 64)
        assert sum(answers.values()) == 64 and len(answers) == 2, answers
        # The kernel hashes each connection to one socket: a fair coin per connection, so a
        # split worse than 16/48 has a chance below one in ten thousand.
        assert min(answers.values()) >= 16, answers
    finally:
        stop(proc)
    assert listening_sockets(port) == 0


@pytest.mark.timeout(120)
def test_one_worker_is_served_as_before_and_a_port_in_use_still_fails():
    port = free_port()
    proc = serve(port, "patched", workers=1)
    try:
        assert listening_sockets(port) == 1 and len(who_answers(port, 4)) == 1
    finally:
        stop(proc)
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen(1)
    try:
        refused = subprocess.run([sys.executable, "-c", APP, str(port), "patched", "2"], cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode != 0 and "Address already in use" in refused.stderr, refused.stderr[-2000:]
    finally:
        taken.close()
