"""The seam between the assistant and the company's systems.

Actions only talk to :class:`CustomerBackend`, through :func:`get_async_backend` (each call runs
off the event loop: :mod:`actions.backend.async_backend`); scripts use :func:`get_backend`. The
operator points ``KLANTCONTACT_BACKEND`` at their own implementation ("package.module:ClassName",
constructed without arguments); the default is the SQL backend (SQLite file, or PostgreSQL via
KLANTCONTACT_DB_URL).
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache

from actions.backend.async_backend import AsyncBackend
from actions.backend.base import (
    BackendUnavailable,
    Cancellation,
    Customer,
    CustomerBackend,
    DuplicateChargeRefund,
    FailedPayment,
    Feedback,
    Goodwill,
    Invoice,
    InvoiceCopy,
    NewsletterUnsubscription,
    NotEligible,
    NotFound,
    Order,
    OrderChange,
    OrderReturn,
    Outage,
    PasswordReset,
    PrivacyRequest,
    Promise,
    Purchase,
    Refund,
    RefundPolicy,
    Shipment,
    SignupLink,
)
from actions.backend.policy import PolicyError, ServicePolicy

__all__ = [
    "AsyncBackend",
    "BackendUnavailable",
    "Cancellation",
    "Customer",
    "CustomerBackend",
    "DuplicateChargeRefund",
    "FailedPayment",
    "Feedback",
    "Goodwill",
    "Invoice",
    "InvoiceCopy",
    "NewsletterUnsubscription",
    "NotEligible",
    "NotFound",
    "Order",
    "OrderChange",
    "OrderReturn",
    "Outage",
    "PasswordReset",
    "PolicyError",
    "PrivacyRequest",
    "Promise",
    "Purchase",
    "Refund",
    "RefundPolicy",
    "ServicePolicy",
    "Shipment",
    "SignupLink",
    "get_async_backend",
    "get_backend",
]

DEFAULT_BACKEND = "actions.backend.sql:SqlBackend"


@lru_cache(maxsize=1)
def get_backend() -> CustomerBackend:
    """The configured backend, created on first use (never at import time)."""
    spec = os.environ.get("KLANTCONTACT_BACKEND", DEFAULT_BACKEND)
    module_name, _, class_name = spec.partition(":")
    if not class_name:
        raise ValueError(f"KLANTCONTACT_BACKEND must look like 'package.module:Class', got {spec!r}")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class()


def get_async_backend() -> AsyncBackend:
    """The configured backend for async code (actions): every call runs in a worker thread."""
    return AsyncBackend(get_backend())
