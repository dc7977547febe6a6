"""Live events: Rasa's tracker events from the Redis Stream to transcripts and agents' screens.

Rasa's event broker appends every tracker event to ``handoff:events``. Each service instance reads
it as one consumer of the group ``handoff`` (so every event is handled once, by one instance),
writes transcript lines and the live-conversations index to Redis, and publishes pushes on a
pub/sub channel that every instance's :class:`Hub` forwards to its own websockets: an agent sees
every line whichever instance their console is connected to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError, TimeoutError as RedisTimeoutError

from contract import keys, slots
from handoff.stream_group import GroupMember
from handoff.models import CasePublic, ConversationPublic, TranscriptLine
from handoff.store import Store, iso_from_timestamp

logger = logging.getLogger(__name__)

SOCKET_QUEUE_SIZE = 1000
HOUSEKEEPING_SECONDS = 30.0


async def stop_task(task: asyncio.Task[None], timeout: float = 5.0) -> None:
    """Cancels a background task and waits for it to end.

    redis-py can swallow a cancellation that lands while it is connecting; the call then carries
    on, so the cancel is repeated until the task really ends (or the timeout passes).
    """
    deadline = time.monotonic() + timeout
    while not task.done() and time.monotonic() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: the task's own loop already logged what matters


class Hub:
    """Fans pushes out to the websockets of this instance, via Redis pub/sub for all instances.

    Pub/sub keeps nothing for a subscriber that is away: a push published while the subscription
    is being re-established (Redis restarted, the connection dropped) never arrives. So the hub
    says whether it is listening (``live``, reported by ``/health``), and every time the
    subscription comes back after a gap it sends its sockets a ``resync``: the console then
    fetches once what it may have missed, as it does when its own socket reconnects.
    """

    RETRY_CAP_SECONDS = 2.0

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queues: Dict[asyncio.Queue[str], str] = {}
        self._pubsub: Any = None
        self.stopping = False
        self.live = False  # subscribed, as Redis confirmed, and no error since
        self._confirmations = 0

    async def start(self) -> None:
        """Subscribes before the app serves, so no push published after start-up is missed."""
        self._pubsub = self.redis.pubsub()
        await self._pubsub.subscribe(keys.PUSH_CHANNEL)

    async def run(self) -> None:
        """Forwards pushes to local sockets until cancelled; resubscribes after Redis errors."""
        delay = 0.5
        while not self.stopping:
            try:
                if self._pubsub is None:
                    await self.start()
                message = await self._pubsub.get_message(timeout=1.0)
                delay = 0.5
                if not message:
                    continue
                if message.get("type") == "message":
                    self._deliver(message["data"])
                elif message.get("type") == "subscribe":
                    # Redis confirms every (re)subscription, also redis-py's own after a reconnect.
                    self._subscribed()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                self.live = False
                logger.warning("push subscription lost (%s); retrying", type(error).__name__)
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_CAP_SECONDS)

    def _subscribed(self) -> None:
        self.live = True
        self._confirmations += 1
        if self._confirmations > 1:
            logger.info("push subscription back; consoles resync")
            self._deliver(json.dumps({"type": "resync"}))

    async def aclose(self) -> None:
        """Stops listening."""
        self.stopping = True
        self.live = False
        await self._close_pubsub()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass

    def _deliver(self, data: str) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                # A console that cannot keep up is dropped (its sender sees None and closes);
                # it reconnects and reloads rather than slowing everyone else down.
                self._queues.pop(queue, None)
                queue.get_nowait()
                queue.put_nowait("")

    def connect(self, username: str) -> asyncio.Queue[str]:
        """A queue of pushes for one websocket of ``username``."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SOCKET_QUEUE_SIZE)
        self._queues[queue] = username
        return queue

    def disconnect(self, queue: asyncio.Queue[str]) -> None:
        """The socket closed."""
        self._queues.pop(queue, None)

    def local_sockets_of(self, username: str) -> int:
        """How many consoles of ``username`` this instance holds."""
        return sum(1 for owner in self._queues.values() if owner == username)

    async def publish(self, message: Dict[str, Any]) -> None:
        """Sends a push to every instance's consoles; a lost push is logged, never fatal."""
        try:
            await self.redis.publish(keys.PUSH_CHANNEL, json.dumps(message, ensure_ascii=False))
        except (RedisError, OSError) as error:
            logger.warning("push not published (%s)", type(error).__name__)

    async def publish_many(self, messages: List[Dict[str, Any]]) -> None:
        """Sends pushes in this order in one round trip; a lost push is logged, never fatal."""
        if not messages:
            return
        if len(messages) == 1:
            await self.publish(messages[0])
            return
        pipe = self.redis.pipeline(transaction=False)
        for message in messages:
            pipe.publish(keys.PUSH_CHANNEL, json.dumps(message, ensure_ascii=False))
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("%d pushes not published (%s)", len(messages), type(error).__name__)

    async def publish_case(self, case: CasePublic) -> None:
        """A case changed."""
        await self.publish({"type": "case", "case": case.model_dump(mode="json")})

    async def publish_conversation(self, conversation: Optional[ConversationPublic]) -> None:
        """A conversation's summary changed."""
        if conversation is not None:
            await self.publish(conversation_push(conversation))

    async def publish_line(self, conversation_id: str, line: TranscriptLine) -> None:
        """A new transcript line."""
        await self.publish(line_push(conversation_id, line))


def line_push(conversation_id: str, line: TranscriptLine) -> Dict[str, Any]:
    """The push for a new transcript line."""
    return {"type": "line", "conversation_id": conversation_id, "line": line.model_dump(mode="json", by_alias=True)}


def conversation_push(conversation: ConversationPublic) -> Dict[str, Any]:
    """The push for a conversation's changed summary."""
    return {"type": "conversation", "conversation": conversation.model_dump(mode="json")}


def line_from_event(event: Dict[str, Any], entry_id: str) -> Optional[Tuple[str, TranscriptLine]]:
    """A tracker event → ``(line key, line)``, or None for events that are not lines.

    User events are customer lines; bot events are bot lines unless ``metadata.agent_id`` says a
    person wrote them. An agent line sent by this service carries its ``message_id``, which is
    used as the key so the copy coming back from the stream is not recorded twice.
    """
    kind = event.get("event")
    text = event.get("text")
    if kind not in ("user", "bot") or not isinstance(text, str) or not text.strip():
        return None
    at = iso_from_timestamp(event.get("timestamp"))
    if kind == "user":
        return entry_id, TranscriptLine.of("customer", text, at)
    metadata = event.get("metadata") or {}
    if isinstance(metadata, dict) and metadata.get("agent_id"):
        key = f"m:{metadata['message_id']}" if metadata.get("message_id") else entry_id
        name = metadata.get("agent_name") or str(metadata["agent_id"])
        return key, TranscriptLine.of("agent", text, at, name)
    return entry_id, TranscriptLine.of("bot", text, at)


@dataclass
class StreamEvent:
    """What one stream entry means for the service (see :meth:`EventConsumer.parse`)."""

    entry_id: str
    conversation_id: str
    timestamp: float
    language: Optional[str]
    channel: Optional[str]
    line: Optional[Tuple[str, TranscriptLine]]
    # False when building the line failed: the conversation is still touched, nothing is pushed.
    complete: bool = True
    # The reason of a request for a person the bot could not hand over (slot handoff_pending).
    pending: Optional[str] = None


class EventConsumer(GroupMember):
    """Reads ``handoff:events`` with the consumer group ``handoff`` until cancelled.

    Args:
        redis: the service's Redis client (``decode_responses=True``).
        store: where transcripts and conversations are written.
        hub: where pushes go.
        name: this instance's consumer name (default: host, process id and a random suffix, so a
            restarted process never inherits another's pending entries by accident).
        block_ms: how long one XREADGROUP waits; below the client's socket timeout.
        batch: at most this many entries are handled (and acknowledged) together.
        linger_ms: after a read that was not a full batch, wait this long and read what came
            meanwhile into the same batch (0 = handle at once, the default). Rasa's own brokers
            write a turn's 10-20 events one XADD at a time; handled together they cost a fraction
            of the CPU. The assistant's broker (bot/event_broker.py) writes a turn in one
            MULTI/EXEC, which a blocked XREADGROUP reads whole: waiting would only delay every
            customer's line on the agents' screens.
        on_pending: called after a batch noted requests for a person that wait
            (:class:`handoff.pending.PendingRequests`.wake).
    """

    def __init__(self, redis: Redis, store: Store, hub: Hub, name: Optional[str] = None,
                 block_ms: int = 2000, batch: int = 100, linger_ms: float = 0.0,
                 on_pending: Optional[Callable[[], None]] = None) -> None:
        super().__init__(redis, keys.EVENTS_GROUP, name, batch)
        self.on_pending = on_pending
        self.store = store
        self.hub = hub
        self.block_ms = block_ms
        self.linger_ms = linger_ms
        # Our own pending entries (read but not acknowledged) are re-read after an error.
        self._reread_pending = True
        self._next_housekeeping = 0.0
        self.stopping = False

    async def run(self) -> None:
        """Processes events until cancelled; survives Redis outages with a growing pause."""
        delay = 0.5
        while not self.stopping:
            try:
                await self.ensure_group()
                while not self.stopping:
                    await self.step()
                    delay = 0.5
            except asyncio.CancelledError:
                raise
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    logger.warning("event stream error: %s", error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                self._reread_pending = True
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                logger.warning("event stream unreachable (%s); retrying", type(error).__name__)
                self._reread_pending = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def step(self) -> int:
        """Reads and handles one batch; returns how many entries were handled."""
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            await self._claim_stale_entries()
        start = "0" if self._reread_pending else ">"
        response = await self.redis.xreadgroup(
            keys.EVENTS_GROUP, self.name, {keys.EVENTS_STREAM: start}, count=self.batch,
            block=None if self._reread_pending else self.block_ms,
        )
        entries = [entry for _, stream_entries in (response or []) for entry in stream_entries]
        if self._reread_pending and not entries:
            self._reread_pending = False
        if start == ">" and 0 < len(entries) < self.batch and self.linger_ms > 0:
            await asyncio.sleep(self.linger_ms / 1000)
            response = await self.redis.xreadgroup(
                keys.EVENTS_GROUP, self.name, {keys.EVENTS_STREAM: ">"}, count=self.batch - len(entries))
            entries += [entry for _, stream_entries in (response or []) for entry in stream_entries]
        return await self._handle(entries, redelivered=start == "0")

    async def _claim_stale_entries(self) -> None:
        """Takes over entries a crashed instance read but never acknowledged."""
        await self.claim_stale(lambda entries: self._handle(entries, redelivered=True))

    async def _handle(self, entries: List[Any], redelivered: bool = False) -> int:
        """Handles a batch, then acknowledges all of it with one XACK.

        Redis errors propagate before the XACK, so the whole batch stays pending and is read
        again once Redis is back (every write is idempotent: lines are keyed, the touch is NX).
        """
        if not entries:
            return 0
        events = []
        for entry_id, fields in entries:
            if fields:
                try:
                    event = self.parse(entry_id, fields)
                except Exception:  # noqa: BLE001 - one malformed event must not stop the stream
                    logger.exception("event %s skipped", entry_id)
                    continue
                if event is not None:
                    events.append(event)
        pushes = await self.apply(events, redelivered=redelivered)
        await self._note_pending(events)
        await self._push_and_ack(pushes, [entry_id for entry_id, _ in entries])
        return len(entries)

    async def _note_pending(self, events: List[StreamEvent]) -> None:
        """Notes requests for a person that wait in ``handoff:pending`` (before the XACK, so a
        failure leaves them on the stream); handoff/pending.py opens them."""
        pending = {event.conversation_id: event.pending for event in events if event.pending}
        if not pending:
            return
        await self.redis.hset(keys.pending_requests(), mapping=pending)
        logger.info("%d request(s) for a person wait to be opened", len(pending))
        if self.on_pending is not None:
            self.on_pending()

    async def _push_and_ack(self, pushes: List[Dict[str, Any]], entry_ids: List[str]) -> None:
        """Publishes the pushes in order, then acknowledges the entries, in one round trip.

        As with :meth:`Hub.publish`, a refused push is logged, never fatal; the XACK's own error
        or a lost connection propagates (the entries stay pending).
        """
        pipe = self.redis.pipeline(transaction=False)
        for push in pushes:
            pipe.publish(keys.PUSH_CHANNEL, json.dumps(push, ensure_ascii=False))
        pipe.xack(keys.EVENTS_STREAM, keys.EVENTS_GROUP, *entry_ids)
        results = await pipe.execute(raise_on_error=False)
        if isinstance(results[-1], Exception):
            raise results[-1]
        refused = [result for result in results[:-1] if isinstance(result, Exception)]
        if refused:
            logger.warning("%d pushes not published (%s)", len(refused), type(refused[0]).__name__)

    async def process(self, entry_id: str, fields: Dict[str, str]) -> None:
        """Handles one stream entry (fields ``sender_id`` and ``event`` as JSON), unacknowledged."""
        event = self.parse(entry_id, fields)
        if event is not None:
            await self.hub.publish_many(await self.apply([event]))

    def parse(self, entry_id: str, fields: Dict[str, str]) -> Optional[StreamEvent]:
        """One stream entry → what it changes, or None for entries that are skipped."""
        try:
            event = json.loads(fields.get("event") or "{}")
        except ValueError:
            logger.warning("event %s is not JSON; skipped", entry_id)
            return None
        if not isinstance(event, dict):
            return None
        conversation_id = fields.get("sender_id") or event.get("sender_id")
        if not conversation_id:
            return None
        timestamp = event.get("timestamp")
        if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
            timestamp = time.time()
        language = channel = None
        kind = event.get("event")
        if kind == "user":
            channel = event.get("input_channel") or None
            metadata = event.get("metadata") or {}
            language = (event.get("parse_data") or {}).get("language") or (
                metadata.get("language") if isinstance(metadata, dict) else None)
        elif kind == "slot" and event.get("name") == slots.LANGUAGE:
            language = event.get("value")
        if language not in slots.LANGUAGES:
            language = None
        parsed = StreamEvent(entry_id, conversation_id, float(timestamp), language, channel, None)
        if kind == "slot" and event.get("name") == slots.HANDOFF_PENDING and isinstance(event.get("value"), str):
            parsed.pending = event["value"][:64] or None
        if kind in ("user", "bot"):
            try:
                parsed.line = line_from_event(event, entry_id)
            except Exception:  # noqa: BLE001 - as before: the conversation is seen, the line skipped
                logger.exception("event %s skipped", entry_id)
                parsed.complete = False
        return parsed

    async def apply(self, events: List[StreamEvent], redelivered: bool = False) -> List[Dict[str, Any]]:
        """Writes a batch of events to Redis; returns the pushes for what changed, in order.

        One transaction holds every write: per conversation one touch (with the first event's
        timestamp: the touch is NX, the later ones of the batch would change nothing; and the
        latest language and channel), then the lines in stream order, then the summaries of the
        conversations that may have changed. The pushes are the new lines in stream order, then
        once per changed conversation its summary (as it is after the whole batch, so after its
        lines), the conversation changed last coming last. A redelivered batch (read again after
        an error) pushes every summary it touches and the lines it recorded, in case the first
        attempt wrote but never pushed.
        """
        if not events:
            return []
        touches: Dict[str, List[Any]] = {}
        for event in events:
            touch = touches.get(event.conversation_id)
            if touch is None:
                touches[event.conversation_id] = [event.timestamp, event.language, event.channel]
            else:
                touch[1] = event.language or touch[1]
                touch[2] = event.channel or touch[2]
        with_lines = [event for event in events if event.line]
        # Summaries read along with the writes: those that change whatever the writes answer.
        # (A conversation that is new without a line, language or channel is read afterwards.)
        if redelivered:
            read = list(touches)
        else:
            read = list(dict.fromkeys(event.conversation_id for event in events
                                      if event.complete and (event.line or event.language or event.channel)))
        new, added, summaries = await self.store.record_events(
            [(conversation_id, *touch) for conversation_id, touch in touches.items()],
            [(event.conversation_id, *event.line, event.timestamp) for event in with_lines],  # type: ignore[misc]
            read,
        )
        new_conversations = {c for c, is_new in zip(touches, new) if is_new}
        added_lines = {id(event) for event, is_added in zip(with_lines, added) if is_added}

        pushes: List[Dict[str, Any]] = []
        changed: Dict[str, None] = dict.fromkeys(touches) if redelivered else {}
        seen = set()
        for event in events:
            # Only the conversation's first event of the batch could have been the one that was new.
            first = event.conversation_id not in seen
            seen.add(event.conversation_id)
            line_added = id(event) in added_lines
            # Read again, a line this very entry recorded the first time is pushed again: that
            # attempt may have failed before its pushes went out (consoles ignore a line they have).
            if line_added or (redelivered and event.line and event.line[0] == event.entry_id):
                pushes.append(line_push(event.conversation_id, event.line[1]))  # type: ignore[index]
            if event.complete and ((first and event.conversation_id in new_conversations) or line_added
                                   or event.language or event.channel):
                changed.pop(event.conversation_id, None)
                changed[event.conversation_id] = None
        if changed:
            by_id = {summary.conversation_id: summary for summary in summaries}
            read_ids = set(read)
            unread = [conversation_id for conversation_id in changed if conversation_id not in read_ids]
            if unread:
                # Rare (a conversation's first events are all actions and slots): push the lines
                # first, so a failing read cannot lose them (the entries are read again).
                await self.hub.publish_many(pushes)
                pushes = []
                by_id.update((summary.conversation_id, summary)
                             for summary in await self.store.conversations(unread))
            pushes += [conversation_push(by_id[c]) for c in changed if c in by_id]
        return pushes
