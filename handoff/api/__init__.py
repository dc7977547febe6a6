"""HTTP and websocket API of the handoff service (routers in ``routes``, dependencies in ``deps``)."""
