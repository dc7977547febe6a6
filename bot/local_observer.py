"""The per-turn observer's own part runs in the Rasa server; the action server only when needed.

Rasa's ``action_extract_slots`` calls ``action_validate_slot_mappings`` on the action server
after every customer message (our per-turn observer, actions/session.py). On nearly every turn
all that observer does is decide the language, the Dutch form of address and the miss count from
the message and the slots (bot/turn_observation.py ``settled_slots``). For that, Rasa rebuilt the
tracker from all its events, sent it to the action server and read the answer: about 1.5 ms of a
turn of 17-30 ms, on every turn, and one more hop between the customer's message and the agent's
console during a handoff.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) wraps
``ActionExtractSlots._execute_validation_action``: when the domain has the observer and the turn
has no work for the action server (``needs_action_server``: no channel identity to look up, no
case waiting for a person), the Rasa server applies ``settled_slots`` itself, merged with the
extracted slots exactly as Rasa merges the observer's answer (a slot the observer sets wins;
the other extracted slots stay). Otherwise Rasa calls the action server as before, whose
observer decides the same slots with the same function and does the rest.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from rasa.core.actions.action import ActionExtractSlots
from rasa.shared.core.constants import ACTION_VALIDATE_SLOT_MAPPINGS
from rasa.shared.core.events import Event, SlotSet

from bot.turn_observation import Turn, needs_action_server, settled_slots

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.core.actions.action:ActionExtractSlots._execute_validation_action",)

_rasa_validation: Optional[Callable[..., Any]] = None


def observed_turn(tracker: Any, slot_events: Sequence[SlotSet] = ()) -> Turn:
    """The turn as the action server's observer would see it: the slots after this message's mappings."""
    latest = tracker.latest_message
    parse_data: Dict[str, Any] = (latest.parse_data if latest is not None else None) or {}
    slots = {name: slot.value for name, slot in tracker.slots.items()}
    slots.update((event.key, event.value) for event in slot_events)
    metadata = latest.metadata if latest is not None else None
    if not (isinstance(metadata, dict) and metadata):
        metadata = slots.get("session_started_metadata")
    return Turn(
        text=parse_data.get("text") or "",
        intent=(parse_data.get("intent") or {}).get("name"),
        detection=parse_data.get("language_detection"),
        slots=slots,
        metadata=metadata if isinstance(metadata, dict) else {},
        input_channel=tracker.get_latest_input_channel(),
        paused=tracker.is_paused(),
    )


async def execute_validation_action(
    self: ActionExtractSlots, extraction_events: List[Event], output_channel: Any, nlg: Any, tracker: Any, domain: Any
) -> List[Event]:
    """Rasa's ``_execute_validation_action``, without the call when the observer's own part is all there is."""
    assert _rasa_validation is not None, "install() first"
    if ACTION_VALIDATE_SLOT_MAPPINGS not in domain.user_actions:
        return await _rasa_validation(self, extraction_events, output_channel, nlg, tracker, domain)
    slot_events = [event for event in extraction_events if isinstance(event, SlotSet)]
    turn = observed_turn(tracker, slot_events)
    if needs_action_server(turn):
        return await _rasa_validation(self, extraction_events, output_channel, nlg, tracker, domain)
    settled = settled_slots(turn)  # language, register, miss count: the observer's order
    observed: List[Event] = [SlotSet(slot, value) for slot, value in settled.items()]
    return observed + [event for event in slot_events if event.key not in settled]


def install() -> None:
    """Makes ``action_extract_slots`` observe the turn itself when the action server has nothing to add."""
    global _rasa_validation
    if _rasa_validation is None:
        _rasa_validation = ActionExtractSlots._execute_validation_action
    ActionExtractSlots._execute_validation_action = execute_validation_action
