"""The backend's promises as events on the Redis stream the insights report reads (SQLite and
PostgreSQL, a real Redis of the tests' own): made, settled, cancelled with an order, settled by an
erasure; nothing for work that rolled back; a Redis that is down or not configured breaks nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Dict, Iterator, List

import pytest
import redis

from actions.backend.base import NotFound
from actions.backend.promise_events import PromiseEventPublisher
from actions.backend.sql import SqlBackend
from contract.keys import PROMISE_EVENTS_STREAM
from scripts.stack import free_port
from tests.backend.test_sql_backend import PIETER, SANNE

UTC = dt.timezone.utc
DUE = dt.datetime(2026, 12, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def stream(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.delete(PROMISE_EVENTS_STREAM)
    yield client
    client.delete(PROMISE_EVENTS_STREAM)
    client.close()


@pytest.fixture
def publishing(backend: SqlBackend, redis_url: str) -> SqlBackend:  # noqa: F811 - the fixture
    backend.promise_events = PromiseEventPublisher(redis.Redis.from_url(redis_url))
    return backend


def published(client: redis.Redis) -> List[Dict[str, str]]:
    return [fields for _, fields in client.xrange(PROMISE_EVENTS_STREAM)]


def test_a_promise_made_and_kept_is_published_once_committed(publishing: SqlBackend, stream: redis.Redis) -> None:
    promise = publishing.add_promise(SANNE, "callback", "We bellen u morgen terug.", DUE, conversation_id="conv-1")
    [made] = published(stream)
    assert made.pop("at")
    assert made == {"event": "made", "promise_id": str(promise.id), "kind": "callback",
                    "due_at": "2026-12-10T18:00:00+00:00", "conversation_id": "conv-1"}
    kept = publishing.settle_promise(SANNE, promise.id, "kept")
    assert kept.status == "kept" and publishing.promises(SANNE, status="kept") == [kept]
    # Settled already: returned as it is, nothing published again.
    assert publishing.settle_promise(SANNE, promise.id, "broken").status == "kept"
    events = published(stream)
    assert [(e["event"], e["promise_id"], e["kind"]) for e in events] == [
        ("made", str(promise.id), "callback"), ("kept", str(promise.id), "callback")]
    assert "conversation_id" not in events[1]  # only the promise names its conversation
    assert dt.datetime.fromisoformat(events[0]["at"]) <= dt.datetime.fromisoformat(events[1]["at"])


def test_settling_someone_elses_promise_or_an_unknown_status_is_refused(publishing: SqlBackend,
                                                                         stream: redis.Redis) -> None:
    promise = publishing.add_promise(SANNE, "callback", "We bellen u terug.", DUE)
    with pytest.raises(NotFound):
        publishing.settle_promise(PIETER, promise.id, "kept")
    with pytest.raises(NotFound):
        publishing.settle_promise(SANNE, promise.id + 1000, "kept")
    with pytest.raises(ValueError):
        publishing.settle_promise(SANNE, promise.id, "done")
    assert [p.status for p in publishing.promises(SANNE)] == ["open"]
    assert [e["event"] for e in published(stream)] == ["made"]


def test_work_that_rolls_back_publishes_nothing(publishing: SqlBackend, stream: redis.Redis) -> None:
    with pytest.raises(RuntimeError):
        with publishing.transaction() as session:
            publishing._insert_promise(session, SANNE, "refund", "Terug op de rekening.", DUE, None, "conv-2")
            session.flush()
            raise RuntimeError("the remedy failed after its promise")
    assert publishing.promises(SANNE) == [] and published(stream) == []


def test_cancelling_a_late_order_cancels_the_resend_promised_for_it(publishing: SqlBackend,
                                                                    stream: redis.Redis) -> None:
    resend = publishing.add_promise(PIETER, "redelivery", "resend order 2024120451 if not delivered", DUE,
                                    reference="2024120451", conversation_id="conv-3")
    other = publishing.add_promise(PIETER, "callback", "We bellen u terug.", DUE)
    cancellation = publishing.cancel_order(PIETER, "2024120451", conversation_id="conv-3")
    assert cancellation.outcome == "return_started"
    statuses = {p.id: p.status for p in publishing.promises(PIETER)}
    assert statuses[resend.id] == "cancelled" and statuses[other.id] == "open"
    events = [(e["event"], e["kind"]) for e in published(stream)]
    assert events == [("made", "redelivery"), ("made", "callback"), ("cancelled", "redelivery"), ("made", "return")]
    publishing.cancel_order(PIETER, "2024120451")  # asked again: the same return, nothing new
    assert len(published(stream)) == 4


def test_erasure_keeps_the_erasure_promise_and_cancels_the_rest(publishing: SqlBackend, stream: redis.Redis) -> None:
    publishing.request_account_deletion(SANNE, conversation_id="conv-4")
    callback = publishing.add_promise(SANNE, "callback", "We bellen u terug.", DUE)
    kept_before = publishing.add_promise(SANNE, "refund", "Terug op de rekening.", DUE)
    publishing.settle_promise(SANNE, kept_before.id, "kept")
    [erasure] = [p for p in publishing.promises(SANNE) if p.kind == "privacy"]
    assert publishing.erase_customer(SANNE)["promises"] == 3
    settled_by_erasure = [(e["event"], e["kind"], e["promise_id"]) for e in published(stream)][4:]
    assert sorted(settled_by_erasure) == [("cancelled", "callback", str(callback.id)),
                                          ("kept", "privacy", str(erasure.id))]
    assert publishing.promises(SANNE) == []


def test_a_redis_that_is_down_costs_a_warning_not_the_promise(backend: SqlBackend,  # noqa: F811
                                                             caplog: pytest.LogCaptureFixture) -> None:
    backend.promise_events = PromiseEventPublisher(redis.Redis(host="127.0.0.1", port=free_port()))
    with caplog.at_level(logging.WARNING, logger="actions.backend.promise_events"):
        promise = backend.add_promise(SANNE, "callback", "We bellen u terug.", DUE)
        assert backend.settle_promise(SANNE, promise.id, "kept").status == "kept"
    assert [p.status for p in backend.promises(SANNE)] == ["kept"]
    assert sum("promise events not published" in r.getMessage() for r in caplog.records) == 2


def test_the_publisher_comes_from_the_environment_the_action_server_has(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path) -> None:
    assert PromiseEventPublisher.from_environment({}) is None
    by_url = PromiseEventPublisher.from_environment({"REDIS_URL": "redis://:secret@redis.example:6380/2"})
    assert {k: by_url.client.connection_pool.connection_kwargs[k] for k in ("host", "port", "db", "password")} == {
        "host": "redis.example", "port": 6380, "db": 2, "password": "secret"}
    by_host = PromiseEventPublisher.from_environment({"REDIS_HOST": "redis", "REDIS_PORT": "6379", "REDIS_DB": "0",
                                                      "REDIS_PASSWORD": ""})
    assert {k: by_host.client.connection_pool.connection_kwargs[k] for k in ("host", "port", "db", "password")} == {
        "host": "redis", "port": 6379, "db": 0, "password": None}
    for name in ("REDIS_URL", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert SqlBackend(f"sqlite:///{tmp_path / 'x.db'}").promise_events is None
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    assert SqlBackend(f"sqlite:///{tmp_path / 'x.db'}").promise_events is not None
    assert SqlBackend(f"sqlite:///{tmp_path / 'x.db'}", promise_events=None).promise_events is None


def test_stream_entries_name_no_customer(publishing: SqlBackend, stream: redis.Redis) -> None:
    conversation = f"conv-{uuid.uuid4().hex}"
    publishing.add_promise(SANNE, "callback", "Bel Sanne op 0612345678.", DUE, conversation_id=conversation)
    [entry] = published(stream)
    assert SANNE not in str(entry) and "0612345678" not in str(entry) and entry["conversation_id"] == conversation


def test_the_insights_aggregation_reads_what_the_backend_writes(publishing: SqlBackend, stream: redis.Redis) -> None:
    from handoff.insights import parse_promise_entry  # standard library and contract only

    promise = publishing.add_promise(SANNE, "refund", "Terug op de rekening.", DUE, conversation_id="conv-5")
    publishing.settle_promise(SANNE, promise.id, "kept")
    made, kept = [parse_promise_entry(entry_id, fields) for entry_id, fields in stream.xrange(PROMISE_EVENTS_STREAM)]
    assert (made.event, made.promise_id, made.kind, made.due, made.conversation_id) == (
        "made", str(promise.id), "refund", DUE.timestamp(), "conv-5")
    assert (kept.event, kept.promise_id, kept.conversation_id) == ("kept", str(promise.id), None)
    assert made.at <= kept.at <= dt.datetime.now(UTC).timestamp()
