"""Retention of Rasa trackers: RETENTION_DAYS becomes a Redis expiry at every save, and the
tracker key the handoff service erases by (contract/retention.py, contract/keys.py) is the one Rasa's store writes."""

import asyncio
import urllib.parse

import pytest
from rasa.core.tracker_store import RedisTrackerStore as RasaStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import RedisTrackerStore
from contract.keys import tracker_key
from contract.retention import retention_days, retention_seconds


def _store(cls, redis_url, prefix, **kwargs):
    parsed = urllib.parse.urlparse(redis_url)
    return cls(Domain.empty(), host=parsed.hostname, port=parsed.port, db=int(parsed.path.lstrip("/") or 0),
               key_prefix=prefix, **kwargs)


def _save(store, sender):
    tracker = DialogueStateTracker(sender, slots=[])
    tracker.update(UserUttered("hallo", {"name": "greet"}))
    tracker.update(SlotSet("customer_id", "48213377"))
    asyncio.run(store.save(tracker))


@pytest.mark.parametrize("prefix", ["helder", "not-alnum", None])
def test_tracker_key_is_the_key_rasa_writes(redis_url, prefix):
    store = _store(RasaStore, redis_url, prefix)
    _save(store, "retention-key-1")
    assert store.red.exists(tracker_key("retention-key-1", prefix))
    store.red.delete(tracker_key("retention-key-1", prefix))


def test_saved_tracker_expires_after_retention_days(redis_url, monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "2")
    store = _store(RedisTrackerStore, redis_url, "helder")
    _save(store, "retention-ttl-1")
    ttl = store.red.ttl(tracker_key("retention-ttl-1"))
    assert 2 * 86400 - 60 < ttl <= 2 * 86400


def test_default_retention_is_30_days(redis_url, monkeypatch):
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    store = _store(RedisTrackerStore, redis_url, "helder")
    _save(store, "retention-ttl-2")
    assert 30 * 86400 - 60 < store.red.ttl(tracker_key("retention-ttl-2")) <= 30 * 86400


def test_zero_keeps_trackers_and_record_exp_wins(redis_url, monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "0")
    store = _store(RedisTrackerStore, redis_url, "helder")
    _save(store, "retention-ttl-3")
    assert store.red.ttl(tracker_key("retention-ttl-3")) == -1
    explicit = _store(RedisTrackerStore, redis_url, "helder", record_exp="600")  # as endpoints.yml substitutes
    _save(explicit, "retention-ttl-4")
    assert 540 < explicit.red.ttl(tracker_key("retention-ttl-4")) <= 600


def test_retention_setting_is_checked():
    assert retention_days({}) == 30
    assert retention_days({"RETENTION_DAYS": "7"}) == 7
    assert retention_seconds(0) is None and retention_seconds(1) == 86400
    for bad in ("-1", "soon"):
        with pytest.raises(ValueError):
            retention_days({"RETENTION_DAYS": bad})
