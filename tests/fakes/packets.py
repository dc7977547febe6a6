"""The context packet the bot opens a case with (``POST /api/cases``), as contract/packet.py builds
it: a Dutch web customer, verified, whose laptop never arrived. Tests change what they need."""

from __future__ import annotations

from typing import Any, Dict


def packet(conversation_id: str, **changes: Any) -> Dict[str, Any]:
    """A complete packet for ``conversation_id``, with ``changes`` replacing whole fields."""
    body: Dict[str, Any] = {
        "conversation_id": conversation_id,
        "reason": "complexity",
        "language": "nl",
        "channel": "socketio",
        "identity": {"customer_id": "48213377", "name": "Sanne Bakker", "verified_by": "postcode",
                     "verified_at": "2024-05-01T10:00:00Z"},
        "problem_description": "ik heb mijn laptop nooit ontvangen",
        "intent": "order_status",
        "entities": {"order_number": "2024118832"},
        "bot_attempts": [{"action": "action_order_status", "result": "lost"}],
        "transcript": [{"from": "customer", "text": "ik heb mijn laptop nooit ontvangen", "at": 1714557600.0},
                       {"from": "bot", "text": "Dat zoek ik voor u uit.", "at": 1714557601.0}],
    }
    body.update(changes)
    return body
