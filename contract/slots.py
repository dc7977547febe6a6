"""Names of the conversation slots both services read or write, and the reply languages.

The handoff service reads the identity, the problem and the pending request from a tracker's
slots (:mod:`contract.packet`, handoff/pending.py), and sets the case, the wait and the agent's
name when it opens a case late or an agent joins. The slots themselves are declared in domain/
(tests/unit/test_contract.py checks each name here is).
"""

from __future__ import annotations

from typing import Tuple

#: The customer's reply language (``nl`` or ``en``).
LANGUAGE = "language"
#: Who the customer is, and how and when that was verified.
CUSTOMER_ID = "customer_id"
CUSTOMER_NAME = "customer_name"
IDENTITY_VERIFIED_BY = "identity_verified_by"
IDENTITY_VERIFIED_AT = "identity_verified_at"
#: The customer's problem in their own words, and what it is about.
PROBLEM_DESCRIPTION = "problem_description"
PROBLEM_INTENT = "problem_intent"
#: What the bot tried and what came of it ("what: result" lines).
BOT_ATTEMPTS = "bot_attempts"
#: The details an agent sees as the case's entities, in this order.
ENTITY_SLOTS: Tuple[str, ...] = ("order_number", "product", "identifier", "postcode")
#: The reason of a request for a person that is not a case yet (the service opens it).
HANDOFF_PENDING = "handoff_pending"
#: The open case, and why it was opened.
HANDOFF_CASE_ID = "handoff_case_id"
HANDOFF_REASON = "handoff_reason"
#: The display name of the agent who joined.
AGENT_NAME = "agent_name"

#: The languages the assistant answers in; :data:`DEFAULT_LANGUAGE` when none is known.
LANGUAGES: Tuple[str, ...] = ("nl", "en")
DEFAULT_LANGUAGE = "nl"


def reply_language(value: object) -> str:
    """``value`` when it is a language the assistant answers in, else the default (Dutch)."""
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE
