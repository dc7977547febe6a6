"""bot.tracker_store.RedisTrackerStore stores and publishes exactly what Rasa's Redis store does; it
refuses a Rasa release its one-read save was not written for; retention is applied in one place."""

import asyncio
import json
import urllib.parse

import pytest
import rasa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import RedisTrackerStore as RasaStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_guard import UnsupportedRasa
from bot.tracker_store import OneReadRedisTrackerStore, RedisTrackerStore, retention_expiry


class RecordingBroker(EventBroker):
    def __init__(self):
        self.published = []

    def publish(self, event):
        self.published.append(event)


def _store(cls, redis_url, prefix):
    parsed = urllib.parse.urlparse(redis_url)
    broker = RecordingBroker()
    store = cls(Domain.empty(), host=parsed.hostname, port=parsed.port, db=int(parsed.path.lstrip("/") or 0),
                key_prefix=prefix, event_broker=broker)
    return store, broker


def _turns(web=False):
    """A conversation over two sessions, saved after every turn (as the processor does); ``web``:
    begun as the socket.io channel begins it, the session's metadata set before the session starts."""
    ts = iter(range(1_700_000_000, 1_700_100_000))
    metadata = [SlotSet("session_started_metadata", {"locale": "nl"}, timestamp=next(ts))] if web else []
    first = [*metadata, ActionExecuted("action_session_start", timestamp=next(ts)), SessionStarted(timestamp=next(ts)),
             ActionExecuted("action_listen", timestamp=next(ts))]
    turn1 = [UserUttered("waar is mijn bestelling", {"name": "order_status"}, timestamp=next(ts)),
             SlotSet("language", "nl", timestamp=next(ts)), BotUttered("Uw klantnummer?", timestamp=next(ts)),
             ActionExecuted("action_listen", timestamp=next(ts))]
    turn2 = [UserUttered("48213377", {"name": "inform"}, timestamp=next(ts)),
             SlotSet("customer_id", "C1", timestamp=next(ts)), ActionExecuted("action_listen", timestamp=next(ts))]
    new_session = [ActionExecuted("action_session_start", timestamp=next(ts)), SessionStarted(timestamp=next(ts)),
                   SlotSet("customer_id", "C1", timestamp=next(ts)), ActionExecuted("action_listen", timestamp=next(ts))]
    turn3 = [UserUttered("thanks", {"name": "thank"}, timestamp=next(ts)), BotUttered("Graag gedaan", timestamp=next(ts)),
             ActionExecuted("action_listen", timestamp=next(ts))]
    return [first, turn1, turn2, new_session, turn3]


async def _replay(store, sender, web=False):
    for events in _turns(web):
        tracker = await store.retrieve(sender) or DialogueStateTracker(sender, slots=[])
        for event in events:
            tracker.update(event)
        await store.save(tracker)
    return await store.retrieve_full_tracker(sender)


@pytest.mark.parametrize("sender, web", [("customer-1", False), ("web-customer-1", True)])
def test_same_stored_tracker_and_same_published_events_as_rasa(redis_url, sender, web):
    theirs, their_broker = _store(RasaStore, redis_url, "rasa-store")
    ours, our_broker = _store(RedisTrackerStore, redis_url, "our-store")
    their_tracker = asyncio.run(_replay(theirs, sender, web))
    our_tracker = asyncio.run(_replay(ours, sender, web))

    assert [e.as_dict() for e in our_tracker.events] == [e.as_dict() for e in their_tracker.events]
    assert len(our_tracker.events) == sum(len(t) for t in _turns(web))
    assert our_broker.published == their_broker.published
    assert [e["event"] for e in our_broker.published].count("user") == 3
    stored_theirs = json.loads(theirs.red.get(theirs.key_prefix + sender))
    stored_ours = json.loads(ours.red.get(ours.key_prefix + sender))
    assert stored_ours == stored_theirs


def test_reads_the_stored_tracker_once_per_save(redis_url, monkeypatch):
    ours, _ = _store(RedisTrackerStore, redis_url, "count-store")
    asyncio.run(_replay(ours, "customer-2"))
    reads = []
    original = ours.deserialise_tracker
    monkeypatch.setattr(ours, "deserialise_tracker", lambda *a: reads.append(1) or original(*a))
    tracker = asyncio.run(ours.retrieve("customer-2"))
    reads.clear()
    tracker.update(UserUttered("nog iets", {"name": "inform"}))
    asyncio.run(ours.save(tracker))
    assert len(reads) == 1


@pytest.mark.parametrize("web", [False, True])
def test_a_turn_that_continues_the_stored_conversation_is_stored_without_rasas_merge(redis_url, monkeypatch, web):
    """Rasa's merge compares every event with every stored one; a web conversation (metadata before
    the session start) took it on every save."""
    ours, _ = _store(RedisTrackerStore, redis_url, "no-merge-store")
    monkeypatch.setattr(ours, "_merge_trackers", lambda *a: pytest.fail("Rasa's merge ran"))
    tracker = asyncio.run(_replay(ours, f"no-merge-{web}", web))
    assert len(tracker.events) == sum(len(t) for t in _turns(web))


def test_a_tracker_that_does_not_continue_the_stored_one_is_merged_as_rasa_merges(redis_url):
    """Events replaced through the HTTP API, say: the stored session and the tracker differ."""
    theirs, _ = _store(RasaStore, redis_url, "rasa-replaced")
    ours, _ = _store(RedisTrackerStore, redis_url, "our-replaced")
    for store in (theirs, ours):
        asyncio.run(_replay(store, "replaced", web=True))
        other = DialogueStateTracker.from_events("replaced", [
            ActionExecuted("action_session_start", timestamp=1_800_000_000), SessionStarted(timestamp=1_800_000_001),
            UserUttered("iets anders", {"name": "inform"}, timestamp=1_800_000_002)])
        asyncio.run(store.save(other))
    assert json.loads(ours.red.get(ours.key_prefix + "replaced")) == json.loads(theirs.red.get(theirs.key_prefix + "replaced"))


def test_endpoints_use_this_store():
    from pathlib import Path

    import yaml

    endpoints = yaml.safe_load((Path(__file__).resolve().parents[2] / "endpoints.yml").read_text())
    assert endpoints["tracker_store"]["type"] == "bot.tracker_store.RedisTrackerStore"


@pytest.mark.parametrize("cls", [OneReadRedisTrackerStore, RedisTrackerStore])
def test_refuses_a_rasa_it_was_not_written_for(monkeypatch, cls):
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with pytest.raises(UnsupportedRasa, match=r"rasa 3\.7\.0 is installed.*3\.6\.21"):
        cls(Domain.empty())


def test_refuses_a_rasa_without_the_private_methods_it_calls(monkeypatch):
    monkeypatch.delattr(RasaStore, "_merge_trackers")
    with pytest.raises(UnsupportedRasa, match="RedisTrackerStore._merge_trackers"):
        RedisTrackerStore(Domain.empty())


def test_the_speed_up_alone_keeps_rasas_expiry(redis_url):
    """Retention is not part of the one-read save: without a record_exp nothing expires, as in Rasa."""
    parsed = urllib.parse.urlparse(redis_url)
    store = OneReadRedisTrackerStore(Domain.empty(), host=parsed.hostname, port=parsed.port, key_prefix="speedup")
    asyncio.run(store.save(DialogueStateTracker("customer-3", slots=[])))
    assert store.red.ttl(store.key_prefix + "customer-3") == -1


def test_retention_expiry_is_record_exp_or_retention_days(monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "2")
    assert retention_expiry(None) == retention_expiry("") == 2 * 86400
    assert retention_expiry("600") == retention_expiry(600.0) == 600  # endpoints.yml substitutes strings
    monkeypatch.setenv("RETENTION_DAYS", "0")
    assert retention_expiry(None) is None
