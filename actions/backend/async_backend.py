"""The customer backend for async code: every backend call runs off the event loop.

:class:`CustomerBackend` is synchronous (SQLAlchemy, or the operator's own client). Actions run
on the action server's one event loop, so a call made there stalls every conversation until the
database answers. :class:`AsyncBackend` offers each ``CustomerBackend`` method as a coroutine
that runs the synchronous call in a worker thread: a slow backend then holds up only the
conversation waiting for it. The threads are bounded by the SQL backend's connection pool, so
no call waits in a thread for a connection. Scripts (seed, erasure) keep the synchronous backend.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Optional

from actions.backend.base import CustomerBackend

# SQLAlchemy's default connection pool (actions/backend/sql.py): 5 connections plus 10 overflow.
WORKER_THREADS = 15

# The calls an action may make: the interface's methods, not the implementation's plumbing.
BACKEND_METHODS = frozenset(name for name in dir(CustomerBackend) if not name.startswith("_"))

_executor: Optional[ThreadPoolExecutor] = None


def _worker_threads() -> ThreadPoolExecutor:
    """The process's pool of backend threads, made on first use."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="backend")
    return _executor


class AsyncBackend:
    """A :class:`CustomerBackend` whose methods are coroutines: ``await backend.orders(customer_id)``."""

    def __init__(self, backend: CustomerBackend) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name not in BACKEND_METHODS:
            raise AttributeError(f"{name!r} is not a CustomerBackend method")
        method = getattr(self.backend, name)

        async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
            # The caller's context (log fields, metrics labels) goes along, as with asyncio.to_thread.
            work = functools.partial(contextvars.copy_context().run, method, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(_worker_threads(), work)

        call_in_thread.__name__ = name
        return call_in_thread
