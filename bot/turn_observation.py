"""What the per-turn observer decides from the message and the slots alone, and when it needs more.

The per-turn observer (Rasa's ``action_validate_slot_mappings``, run by ``action_extract_slots``
after every customer message) keeps the reply language sticky, follows the Dutch form of address,
resets the count of misunderstandings, takes the identity a channel vouches for (a WhatsApp phone
number, a shop token) and, while a case waits for a person, acknowledges the customer.

The first three need nothing but the message and the slots: :func:`settled_slots`. The last two
need the company's systems or the handoff service, which only the action server talks to:
:func:`needs_action_server` says when a turn has such work. The action server's observer
(actions/session.py ``ActionObserveTurn``) does all of it with these two functions; the Rasa
server runs the first part itself when the second has nothing to do, which is nearly every turn,
and saves the call (bot/local_observer.py): the same slots, in the same order, either way.

Plain values in, plain values out: no Rasa, no rasa-sdk, so both servers can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from bot.language import Detection, channel_language_hint, decide_language, decide_register, get_detector
from contract.slots import AGENT_NAME, CUSTOMER_ID, HANDOFF_CASE_ID, LANGUAGE

REGISTER = "register"
CONSECUTIVE_MISSES = "consecutive_misses"
# Intents that are no progress after a miss: a bare "no" to "did you mean ...?" keeps the count.
_NO_PROGRESS = ("nlu_fallback", "deny")


@dataclass(frozen=True)
class Turn:
    """One customer message as the observer sees it, after this message's slot mappings.

    ``metadata`` is what the channel sent with this message, or else the session's
    (``session_started_metadata``); ``input_channel`` is the channel the message came in on.
    """

    text: str
    intent: Optional[str]
    detection: Optional[Dict[str, Any]]
    slots: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    input_channel: Optional[str] = None
    paused: bool = False

    @property
    def is_command(self) -> bool:
        """A button's payload ("/affirm"), not words the customer typed."""
        return self.text.startswith("/")


def settled_slots(turn: Turn) -> Dict[str, Any]:
    """The language, register and miss-count slots this message changes (in that order)."""
    changed: Dict[str, Any] = {}
    detection = Detection.from_dict(turn.detection)
    if detection is None and turn.text and not turn.is_command:
        detection = get_detector().detect(turn.text)
    current = turn.slots.get(LANGUAGE)
    language = decide_language(current, detection, channel_language_hint(dict(turn.metadata)))
    if language != current:
        changed[LANGUAGE] = language
    if language == "nl" and not turn.is_command:
        register = decide_register(turn.slots.get(REGISTER), turn.text)
        if register != turn.slots.get(REGISTER):
            changed[REGISTER] = register
    if turn.intent not in _NO_PROGRESS and turn.slots.get(CONSECUTIVE_MISSES):
        changed[CONSECUTIVE_MISSES] = 0.0
    return changed


def channel_may_vouch(turn: Turn) -> bool:
    """An unidentified customer whose channel may say who they are (a lookup is needed).

    A shop token on any channel; a phone number only as the WhatsApp connector sets it (a web
    client could send any number: it never counts).
    """
    if turn.slots.get(CUSTOMER_ID):
        return False
    return bool(turn.metadata.get("shop_token")) or bool(turn.metadata.get("phone") and turn.input_channel == "whatsapp")


def waiting_for_agent(paused: bool, slots: Mapping[str, Any]) -> bool:
    """True while the conversation is paused with a case no agent has claimed yet."""
    return bool(paused and slots.get(HANDOFF_CASE_ID) and not slots.get(AGENT_NAME))


def needs_action_server(turn: Turn) -> bool:
    """Whether the observer has work for this message that only the action server can do."""
    return channel_may_vouch(turn) or waiting_for_agent(turn.paused, turn.slots)
