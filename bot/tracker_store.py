"""The Rasa server's Redis tracker store: Rasa's, with a faster save and the retention policy.

Two separate pieces:

- **The speed-up** (:class:`OneReadRedisTrackerStore`): ``rasa.core.tracker_store.RedisTrackerStore.save``
  fetches and deserialises the stored tracker twice on every turn: once to find the new events
  for the event broker (``stream_events`` → ``retrieve``) and once more to merge with earlier
  conversation sessions. Deserialising replays every event of the conversation, so this is one of
  the larger costs of a turn (docs/benchmarks.md, "Profile of a turn"). This store does the same
  work with one GET and one deserialisation; what it publishes and what it stores are the same as
  Rasa's, expiry (``record_exp``) included. Rasa then merges the stored conversation with the
  tracker of the turn, which holds only the last session (what ``retrieve`` gave): when the two
  do not line up by timestamp it compares every event of the turn with every stored one
  (``as_dict`` of both, quadratic in the length of the conversation). That is every save of every
  web conversation: the socket.io channel sets the ``session_started_metadata`` slot just before
  ``action_session_start``, so the stored conversation counts as two sessions. When the turn's
  tracker is the stored last session plus new events (the events compared one by one, in
  order), what Rasa stores is the stored events followed by the new ones, and that is what this
  store writes, without the merge; any other tracker (events replaced through the HTTP API, say)
  takes Rasa's merge. The stored text is written by ujson (bot/fast_json.py): the same JSON,
  read back by Rasa's ``json.loads`` as before. The store is built on private methods of Rasa's
  store (:data:`RELIES_ON`), so it refuses to be created on a Rasa release it was not tested with
  (bot/rasa_guard.py; the Rasa server's entry point checks the same at start, bot/rasa_patches.py).
- **Retention** (:func:`retention_expiry`): without a ``record_exp`` in endpoints.yml every save
  gives the tracker key a Redis expiry of ``RETENTION_DAYS`` (default 30, see
  ``contract/retention.py``) from now, so a conversation disappears that many days after its last
  activity; ``RETENTION_DAYS=0`` keeps trackers for ever.

Configured in endpoints.yml (same settings as Rasa's ``type: redis``)::

    tracker_store:
      type: bot.tracker_store.RedisTrackerStore
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional

import rasa.shared.core.trackers
from rasa.core.tracker_store import RedisTrackerStore as RasaRedisTrackerStore
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker, TrackerEventDiffEngine

from bot import fast_json, rasa_guard
from contract.retention import retention_seconds

#: What of Rasa's that is not public API the one-read save calls.
RELIES_ON = (
    "rasa.core.tracker_store:RedisTrackerStore._stream_new_events",
    "rasa.core.tracker_store:RedisTrackerStore._merge_trackers",
    "rasa.core.tracker_store:RedisTrackerStore.deserialise_tracker",
    "rasa.core.tracker_store:RedisTrackerStore.serialise_tracker",
    "rasa.shared.core.trackers:get_trackers_for_conversation_sessions",
    "rasa.shared.core.trackers:TrackerEventDiffEngine.event_difference",
)


def retention_expiry(record_exp: Optional[Any]) -> Optional[int]:
    """The Redis expiry (seconds) of a saved conversation: ``record_exp`` when endpoints.yml sets
    one, else ``RETENTION_DAYS``; None keeps it for ever."""
    if record_exp in (None, ""):
        return retention_seconds()
    return int(float(record_exp))  # endpoints.yml values substituted from the environment arrive as strings


class OneReadRedisTrackerStore(RasaRedisTrackerStore):
    """Rasa's Redis tracker store whose ``save`` reads the stored tracker once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        rasa_guard.require(RELIES_ON, needed_for="bot/tracker_store.py (the one-read save)")
        super().__init__(*args, **kwargs)

    async def save(self, tracker: DialogueStateTracker, timeout: Optional[float] = None) -> None:
        """Publishes the new events and stores the conversation (all sessions)."""
        key = self.key_prefix + tracker.sender_id
        stored = self.red.get(key)
        prior = self.deserialise_tracker(tracker.sender_id, stored) if stored is not None else None
        last = _last_session(prior)
        new_events = TrackerEventDiffEngine.event_difference(last, tracker)

        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

        if not timeout and self.record_exp:
            timeout = self.record_exp
        merged = _merged_without_replay(prior, last, tracker, new_events) if prior is not None else None
        if merged is not None:
            serialised = fast_json.dumps({"events": merged, "name": tracker.sender_id})
        else:
            serialised = self.serialise_tracker(self._merge_trackers(prior, tracker) if prior is not None else tracker)
        self.red.set(key, serialised, ex=timeout)

    @staticmethod
    def serialise_tracker(tracker: DialogueStateTracker) -> str:
        """Rasa's text of a stored conversation, written by bot/fast_json.py."""
        return fast_json.dumps(tracker.as_dialogue().as_dict())


class RedisTrackerStore(OneReadRedisTrackerStore):
    """The store endpoints.yml configures: the one-read save, with :func:`retention_expiry`."""

    def __init__(self, *args: Any, record_exp: Optional[Any] = None, **kwargs: Any) -> None:
        """Rasa's arguments; ``record_exp`` (seconds) defaults to ``RETENTION_DAYS``."""
        super().__init__(*args, record_exp=retention_expiry(record_exp), **kwargs)


def _last_session(tracker: Optional[DialogueStateTracker]) -> Optional[DialogueStateTracker]:
    """What ``retrieve`` returns for a stored tracker: its last conversation session."""
    if tracker is None:
        return None
    sessions = rasa.shared.core.trackers.get_trackers_for_conversation_sessions(tracker)
    return tracker if len(sessions) <= 1 else sessions[-1]


def _merged_without_replay(prior: DialogueStateTracker, last: Optional[DialogueStateTracker],
                           tracker: DialogueStateTracker, new_events: List[Event]) -> Optional[List[Dict[str, Any]]]:
    """The events (as dicts) Rasa's merge stores, when ``tracker`` is ``last`` (the stored last
    session) followed by ``new_events``: the stored events, then each new one not already there
    (Rasa's rule: equal ``as_dict``). None when ``tracker`` does not begin with ``last``."""
    if last is None or len(tracker.events) < len(last.events):
        return None
    merged = [event.as_dict() for event in prior.events]
    head = len(merged) - len(last.events)
    if [event.as_dict() for event in itertools.islice(tracker.events, len(last.events))] != merged[head:]:
        return None
    for event in new_events:
        as_dict = event.as_dict()
        if as_dict not in merged:
            merged.append(as_dict)
    return merged
