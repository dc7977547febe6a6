"""Listeners on every Sanic app the Rasa server configures: how a change to Rasa acts at start or stop.

``rasa.core.run.configure_app`` makes the server's Sanic app; :func:`on_every_server` wraps it so
that each app it makes from then on has the listener registered (Sanic calls it with the app and
the event loop). Used by the changes in bot/rasa_patches.py, which install at server start.
"""

from __future__ import annotations

import functools
from typing import Any, Callable


def on_every_server(listener: Callable[..., Any], event: str) -> None:
    """Registers ``listener`` for ``event`` ("before_server_start", "after_server_stop", ...) on
    every app ``rasa.core.run.configure_app`` makes after this call."""
    import rasa.core.run

    configure_app = rasa.core.run.configure_app

    @functools.wraps(configure_app)
    def configure_app_with_listener(*args: Any, **kwargs: Any) -> Any:
        app = configure_app(*args, **kwargs)
        app.register_listener(listener, event)
        return app

    rasa.core.run.configure_app = configure_app_with_listener
