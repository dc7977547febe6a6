"""Thin routers, one per resource: auth, cases, conversations, ws."""
