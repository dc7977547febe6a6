"""The input channels both services tell apart, and the web chat's session id.

A tracker's ``latest_input_channel`` is one of these names; the handoff service shows a
WhatsApp case's 24-hour window and serves the web chat's history to the widget's session.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

#: The website chat widget (bot/channels/webchat.py, socket.io).
WEB = "socketio"
#: WhatsApp (bot/channels/whatsapp/); the conversation id is the customer's ``wa_id``.
WHATSAPP = "whatsapp"

#: A web chat session id: 32 to 128 hex characters. It is also the conversation id, and the
#: secret the widget shows its history with (handoff/api/routes/public.py).
SESSION_ID = re.compile(r"^[0-9a-fA-F]{32,128}$")


def valid_session_id(value: Any) -> TypeGuard[str]:
    """True for a session id the widget may use: 32 to 128 hex characters."""
    return isinstance(value, str) and bool(SESSION_ID.fullmatch(value))
