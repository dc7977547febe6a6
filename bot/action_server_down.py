"""When the action server cannot answer: one apology, the conversation to a person, no hang.

Rasa 3.6 has no answer of its own for an action server that is down or slow. A failing custom
action is logged ("Encountered an exception while running action ...") and its events are
dropped, so the customer gets nothing at all, turn after turn; a slow one is waited for up to
300 s per call (``rasa.core.constants.DEFAULT_REQUEST_TIMEOUT``, not configurable), several
times per turn. Both break service rules 5 and 6 (no dead ends, always a way to a person).

:func:`install` changes that in the Rasa server (which installs it at start, bot/rasa_patches.py,
after checking the Rasa release and that :data:`REPLACES` exists):

- **A time limit per call**: ``ACTION_TIMEOUT_SECONDS`` (default 8) instead of 300.
- **A fallback instead of silence**: when a call fails (cannot connect, times out, HTTP 5xx, an
  invalid answer), the action returns, instead of raising, the events of
  :func:`service_trouble_events`: the first time in a conversation, the apology
  ``utter_service_trouble`` in the customer's language and form of address (which promises a
  colleague), the slots
  ``service_trouble`` and ``handoff_pending`` (reason ``backend_failure``), and a pause; after
  that only the pause. The handoff service reads ``handoff_pending`` from the event stream and
  opens the case (handoff/pending.py), now or once it is back itself; the agent's hand-back
  ends the pause. A rejection (HTTP 400: a form's "this slot is not mine") is not a failure and
  is raised as before.
- **The session still starts**: when ``action_session_start`` fails, Rasa's own session start
  runs instead (the customer's message is not read yet, so its language is not known); the
  turn's next custom action fails too and apologises in the message's language.
- **No second wait for the same customer**: after a call of a conversation timed out, that
  conversation's calls fail at once for ``ACTION_RETRY_SECONDS`` (default 10): a turn calls the
  action server up to three times (session start, slot extraction, the predicted action) and
  must not wait for the time limit at each (:class:`RecentTimeouts`).
- **No wait for everyone once the action server is down**: after ``ACTION_BREAKER_FAILURES``
  (default 3) timed-out calls in a row, every conversation's calls fail at once for
  ``ACTION_RETRY_SECONDS``; then the next call tries again, and one more timeout opens it again
  while a success closes it (a circuit breaker per Rasa process, :class:`Breaker`). One slow call
  costs one customer one wait, never every customer an apology. A refused connection fails at
  once anyway and counts for nothing, so the assistant is back the moment its action server is.

``action_extract_slots`` runs the per-turn observer (``action_validate_slot_mappings``) itself and keeps
only the SlotSet events of what they return, so it would drop the apology and the pause: a
failure inside it returns nothing there, and the fallback's events are added to what
``action_extract_slots`` returns (Rasa sends its bot messages and applies its events).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional

import rasa.core.actions.action as rasa_action
from rasa.core.actions.action import (ActionExecutionRejection, ActionExtractSlots, ActionSessionStart, RemoteAction,
                                      create_bot_utterance)
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.events import ConversationPaused, SlotSet

from bot.local_observer import observed_turn
from bot.turn_observation import REGISTER, settled_slots
from contract.reasons import EscalationReason
from contract.slots import HANDOFF_PENDING, LANGUAGE

logger = logging.getLogger(__name__)

#: What :func:`install` replaces in Rasa.
REPLACES = (
    "rasa.core.actions.action:DEFAULT_REQUEST_TIMEOUT",
    "rasa.core.actions.action:RemoteAction.run",
    "rasa.core.actions.action:ActionExtractSlots.run",
)

APOLOGY = "utter_service_trouble"
TROUBLE_SLOT = "service_trouble"
PENDING_SLOT = HANDOFF_PENDING
# The case's reason: the bot could not reach the systems it needs (as for a backend failure).
REASON = EscalationReason.BACKEND_FAILURE.value
# While action_extract_slots runs: the names of the custom actions that failed inside it.
_FAILED_IN_EXTRACTION: contextvars.ContextVar[Optional[List[str]]] = contextvars.ContextVar(
    "helder_failed_in_extraction", default=None)


def _positive(name: str, default: float) -> float:
    """The positive number in the environment variable ``name``, else ``default``."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default
    return value if value > 0 else default


class Breaker:
    """Fails every call at once for a while after ``failures_to_open`` timeouts in a row.

    Open for ``retry_seconds``; then the next call is tried: a success closes the breaker and
    resets the count, one more failure opens it again at once (the count is still reached).
    """

    def __init__(self, retry_seconds: float, failures_to_open: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_seconds = retry_seconds
        self.failures_to_open = failures_to_open
        self.clock = clock
        self._failures = 0
        self._open_until = 0.0

    def is_open(self) -> bool:
        return self.clock() < self._open_until

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.failures_to_open:
            self._open_until = self.clock() + self.retry_seconds

    def succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0


class RecentTimeouts:
    """The conversations whose call timed out less than ``retry_seconds`` ago.

    Their calls fail at once meanwhile, so one customer never waits for the time limit twice in
    a row, whatever the :class:`Breaker` says. Forgets a conversation when its time is up.
    """

    def __init__(self, retry_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._until: Dict[str, float] = {}

    def add(self, conversation_id: str) -> None:
        now = self.clock()
        self._until = {other: until for other, until in self._until.items() if until > now}
        self._until[conversation_id] = now + self.retry_seconds

    def __contains__(self, conversation_id: object) -> bool:
        return self.clock() < self._until.get(str(conversation_id), 0.0)

    def clear(self) -> None:
        self._until.clear()


class ActionServerUnavailable(Exception):
    """Raised instead of calling the action server while the breaker is open, or while the
    conversation's last call timed out moments ago."""


async def service_trouble_events(tracker: Any, nlg: Any, output_channel: Any) -> List[Any]:
    """What a failed custom action returns instead: the apology once, then only the pause.

    Once per outage: while the conversation is paused after the apology nothing is said again;
    once a person resumed it (hand-back, resolve) a new failure is a new apology.
    """
    if tracker.get_slot(TROUBLE_SLOT) and tracker.is_paused():
        return [ConversationPaused()]
    # The language and form of address as the per-turn observer decides them (its call may be
    # what failed): the latest message's detection, or the channel's hint, on the first turn.
    settled = settled_slots(observed_turn(tracker))
    events: List[Any] = [SlotSet(slot, settled[slot]) for slot in (LANGUAGE, REGISTER) if slot in settled]
    # The response's variations depend on the language and register slots: render with them set.
    speaking = tracker.copy()
    for event in events:
        speaking.update(event)
    message = await nlg.generate(APOLOGY, speaking, output_channel.name())
    if message:
        message["event"] = "service_trouble"  # becomes metadata.event (as agent_joined does): tells it apart
        events.append(create_bot_utterance(message))
    else:  # pragma: no cover - the domain lacks the response; the pause still ends the silence
        logger.error("response %s missing from the domain", APOLOGY)
    return events + [SlotSet(TROUBLE_SLOT, True), SlotSet(PENDING_SLOT, REASON), ConversationPaused()]


def _is_timeout(error: BaseException) -> bool:
    """A call that took too long (RemoteAction lets aiohttp's total timeout through as is)."""
    return isinstance(error, asyncio.TimeoutError) or isinstance(error.__cause__, asyncio.TimeoutError)


def _is_failure(error: BaseException) -> bool:
    return not isinstance(error, ActionExecutionRejection)


def install() -> None:
    """Installs the time limit, the fallback, the per-conversation memory and the breaker into Rasa."""
    rasa_action.DEFAULT_REQUEST_TIMEOUT = _positive("ACTION_TIMEOUT_SECONDS", 8.0)  # RemoteAction.run reads it
    retry_seconds = _positive("ACTION_RETRY_SECONDS", 10.0)
    breaker = Breaker(retry_seconds, failures_to_open=int(_positive("ACTION_BREAKER_FAILURES", 3)))
    recent_timeouts = RecentTimeouts(retry_seconds)
    remote_run = RemoteAction.run
    extract_run = ActionExtractSlots.run

    async def run(self, output_channel, nlg, tracker, domain):
        try:
            if breaker.is_open():
                raise ActionServerUnavailable("the action server timed out several times in a row moments ago")
            if tracker.sender_id in recent_timeouts:
                raise ActionServerUnavailable("the action server timed out for this conversation moments ago")
            events = await remote_run(self, output_channel, nlg, tracker, domain)
        except Exception as error:  # noqa: BLE001 - every failure gets the same honest answer
            if not _is_failure(error):
                raise
            if _is_timeout(error):
                breaker.failed()
                recent_timeouts.add(tracker.sender_id)
            logger.error("custom action %s of %s failed (%s: %s); the conversation goes to a person",
                         self.name(), tracker.sender_id, type(error).__name__, error)
            inside_extraction = _FAILED_IN_EXTRACTION.get()
            if inside_extraction is not None:
                # action_extract_slots keeps only SlotSets of what its actions return: it gets
                # the apology and the pause added after it ran (see extract below).
                inside_extraction.append(self.name())
                return []
            if self.name() == ACTION_SESSION_START_NAME:
                # The customer's message is not read yet (the session starts first): start the
                # session as Rasa would by itself; the turn's next custom action fails too and
                # apologises in the language the message turns out to be in.
                return await ActionSessionStart().run(output_channel, nlg, tracker, domain)
            return await service_trouble_events(tracker, nlg, output_channel)
        breaker.succeeded()
        return events

    async def extract(self, output_channel, nlg, tracker, domain):
        failed = _FAILED_IN_EXTRACTION.set([])
        try:
            events = await extract_run(self, output_channel, nlg, tracker, domain)
            trouble = _FAILED_IN_EXTRACTION.get()
        finally:
            _FAILED_IN_EXTRACTION.reset(failed)
        return events + (await service_trouble_events(tracker, nlg, output_channel) if trouble else [])

    run.breaker = breaker  # type: ignore[attr-defined]
    run.recent_timeouts = recent_timeouts  # type: ignore[attr-defined]
    RemoteAction.run = run
    ActionExtractSlots.run = extract
