"""The Rasa server's worker processes each get their share of the connections (SO_REUSEPORT).

With ``SANIC_WORKERS`` > 1 (``make run`` starts two; the deploy files run one process per
container and scale by replicas behind their load balancer), Sanic 21.12 binds one
listening socket in its main process and every worker accepts from that one socket. Whichever
worker wakes first accepts every connection waiting (asyncio accepts up to the backlog per
wake-up), and a connection stays with the worker that accepted it: measured with 96 simulated
customers on keep-alive connections, one worker used 73 % of a core and the other 16 %, and the
turn time's tail grew while the second core was mostly idle.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) changes two things in
Sanic's runner, for several workers only:

- the main process's socket gets ``SO_REUSEPORT`` and is bound but never listens: it only keeps
  the address for the workers (and a port already in use still fails at start);
- each worker binds and listens on its own socket with ``SO_REUSEPORT`` on that address, instead
  of the inherited one.

The kernel then hands each new connection to one of the workers' sockets by a hash of its
addresses: connections spread evenly, whatever the workers are doing at that moment. One worker
(the default, and the tests) is served as before.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Optional

import sanic.server.runners as runners

#: What :func:`install` changes in Sanic (Rasa 3.6 pins sanic 21.12).
REPLACES = ("sanic.server.runners:bind_socket", "sanic.server.runners:serve")

_sanic_serve: Optional[Callable[..., Any]] = None


def _reusable(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def bind_socket(host: str, port: int, *, backlog: int = 100) -> socket.socket:
    """The main process's socket: the address, held with SO_REUSEPORT, not listening.

    ``backlog`` is the workers' (see :func:`serve`); Sanic passes it here too.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _reusable(family)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve(*args: Any, **kwargs: Any) -> Any:
    """Sanic's ``serve`` in a worker, on a listening socket of its own on the main's address."""
    assert _sanic_serve is not None, "bot/reuse_port.py: serve called before install()"
    inherited = kwargs.get("sock")
    if kwargs.get("run_multiple") and isinstance(inherited, socket.socket) \
            and inherited.family in (socket.AF_INET, socket.AF_INET6):
        own = _reusable(inherited.family)
        own.bind(inherited.getsockname())
        own.listen(kwargs.get("backlog") or 100)
        inherited.close()  # this worker's copy; the main process keeps the address
        kwargs["sock"] = own
    return _sanic_serve(*args, **kwargs)


def install() -> None:
    """Makes Sanic's workers listen on sockets of their own (see the module docstring)."""
    global _sanic_serve
    if _sanic_serve is None:
        _sanic_serve = runners.serve
    runners.bind_socket = bind_socket
    runners.serve = serve
