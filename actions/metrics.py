"""Prometheus metrics of the action server (``prometheus-client``), on a separate internal port.

``ACTIONS_METRICS_PORT`` (unset: no metrics, nothing changes) makes :func:`install`, which the
``actions`` package calls when the action server imports it, start prometheus-client's own HTTP
server on ``ACTIONS_METRICS_HOST`` (default 127.0.0.1: an internal port, like the handoff
service's, never published) and time:

- ``helder_actions_backend_call_seconds{method,outcome}``: every call to the company's systems
  (the configured ``KLANTCONTACT_BACKEND`` class's ``CustomerBackend`` methods); ``outcome`` is
  ``ok``, ``unavailable`` (``BackendUnavailable``) or ``error``;
- ``helder_actions_handoff_call_seconds{outcome}``: the calls that open a case at the handoff
  service (actions/escalation.py), ``ok`` or ``error``.

Without prometheus-client installed the module does nothing (a warning when a port is set), so an
environment that lacks it keeps working.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import time
from typing import Any, Callable, Dict, Mapping, Optional

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_METRICS: Dict[str, Any] = {}


def _metrics() -> Dict[str, Any]:
    """The metrics on prometheus-client's default registry, created once."""
    if not _METRICS:
        from prometheus_client import Histogram

        _METRICS["backend"] = Histogram("helder_actions_backend_call_seconds", "Calls to the company's systems",
                                        ["method", "outcome"], buckets=LATENCY_BUCKETS)
        _METRICS["handoff"] = Histogram("helder_actions_handoff_call_seconds", "Calls opening a case at the handoff service",
                                        ["outcome"], buckets=LATENCY_BUCKETS)
    return _METRICS


def observe_handoff_call(seconds: float, ok: bool) -> None:
    """Records one call to the handoff service (a no-op until :func:`install` ran)."""
    if _METRICS:
        _METRICS["handoff"].labels("ok" if ok else "error").observe(seconds)


def _timed(method_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    from actions.backend import BackendUnavailable

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = function(*args, **kwargs)
            outcome = "ok"
            return result
        except BackendUnavailable:
            outcome = "unavailable"
            raise
        except Exception as error:  # noqa: BLE001 - refusals (NotEligible, NotFound) are answers
            outcome = "ok" if type(error).__module__.startswith("actions.backend") else "error"
            raise
        finally:
            _METRICS["backend"].labels(method_name, outcome).observe(time.perf_counter() - started)

    call.__helder_timed__ = True  # type: ignore[attr-defined]
    return call


def instrument_backend(backend_class: type) -> int:
    """Times the ``CustomerBackend`` methods of ``backend_class`` (once); returns how many."""
    from actions.backend.base import CustomerBackend

    names = [name for name, value in vars(CustomerBackend).items()
             if callable(value) and not name.startswith("_")]
    wrapped = 0
    for name in names:
        function = getattr(backend_class, name, None)
        if function is None or getattr(function, "__helder_timed__", False):
            continue
        setattr(backend_class, name, _timed(name, function))
        wrapped += 1
    return wrapped


def install(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """Starts the metrics port and times the backend when ``ACTIONS_METRICS_PORT`` is set;
    returns the port, or None when metrics are off."""
    environ = os.environ if environ is None else environ
    port = (environ.get("ACTIONS_METRICS_PORT") or "").strip()
    if not port:
        return None
    try:
        from prometheus_client import start_http_server
    except ImportError:
        logger.warning("ACTIONS_METRICS_PORT is set but prometheus-client is not installed: no metrics")
        return None
    _metrics()
    spec = environ.get("KLANTCONTACT_BACKEND", "actions.backend.sql:SqlBackend")
    module_name, _, class_name = spec.partition(":")
    instrument_backend(getattr(importlib.import_module(module_name), class_name))
    start_http_server(int(port), addr=environ.get("ACTIONS_METRICS_HOST", "127.0.0.1"))
    logger.info("action server metrics on %s:%s/metrics", environ.get("ACTIONS_METRICS_HOST", "127.0.0.1"), port)
    return int(port)
