"""Requests for a person that could not be opened at the time: opened as soon as they can be.

A request waits in two situations:

- the handoff service was down when the customer asked (``action_handoff`` could not reach it:
  actions/escalation.py tells the customer so, and the bot goes on helping meanwhile);
- the action server was down or slow (bot/action_server_down.py: Rasa apologises, promises a
  colleague and pauses the bot).

Both leave the slot ``handoff_pending`` (the reason) on the tracker. Rasa's event broker appends
that SlotSet to the event stream in Redis (AOF), and the consumer group reads the stream from
where it stopped, so the request is still there when the service comes back, however long it was
away. The consumer notes the conversation in the hash ``handoff:pending`` before it acknowledges
the event (handoff/consumer.py); :class:`PendingRequests` works through that hash, on every
instance, one instance per conversation at a time (a short Redis lock):

1. read the conversation's tracker from Rasa; if ``handoff_pending`` is empty by now (the customer
   asked again and that worked, an agent took over, the data was erased), there is nothing to do;
2. open the case with the same context packet as a takeover (the transcript up to now), through
   the case workflow (handoff/workflow.py): stored first, then
3. pause the bot, store the case and its wait in the slots (``handoff_pending`` cleared) and tell
   the customer the honest wait, ``utter_handoff_queued`` or ``utter_handoff_no_agents``, rendered
   by Rasa in the conversation's language;
4. forget the entry.

Rasa unreachable or refusing: the entry stays and is tried again after ``interval`` seconds.
Opening twice is harmless: the store returns the conversation's open case.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from contract import keys, slots
from contract.packet import packet_from_tracker
from contract.reasons import bot_reason
from handoff.consumer import Hub
from handoff.models import CaseCreate
from handoff.rasa_client import RasaClient, RasaError
from handoff.store import Store
from handoff.workflow import CaseWorkflow

logger = logging.getLogger(__name__)

LOCK_SECONDS = 30


class PendingRequests:
    """Opens the cases of ``handoff:pending`` until cancelled.

    Args:
        redis, store, hub, rasa: the service's clients.
        interval: seconds between two looks at the hash (the consumer also wakes it at once).
        workflow: opens the case and tells the customer (default: one over ``store``, ``rasa``, ``hub``).
    """

    def __init__(self, redis: Redis, store: Store, hub: Hub, rasa: RasaClient, interval: float = 5.0,
                 workflow: Optional[CaseWorkflow] = None) -> None:
        self.redis = redis
        self.store = store
        self.hub = hub
        self.rasa = rasa
        self.workflow = workflow or CaseWorkflow(store, rasa, hub)
        self.interval = interval
        self.stopping = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A request was just noted: look now rather than at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self.process()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                logger.warning("pending requests: Redis unreachable (%s); retrying", type(error).__name__)
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad entry
                logger.exception("pending requests: pass failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def process(self) -> int:
        """One pass over the hash; returns how many requests were opened."""
        opened = 0
        for conversation_id, reason in (await self.redis.hgetall(keys.pending_requests())).items():
            lock = keys.pending_lock(conversation_id)
            if not await self.redis.set(lock, "1", nx=True, ex=LOCK_SECONDS):
                continue  # another instance is at it
            try:
                if await self.open(conversation_id, reason) is not None:
                    opened += 1
            except RasaError as error:
                logger.warning("pending request of %s waits: %s", conversation_id, error)
            except (RedisError, OSError):
                raise
            except Exception:  # noqa: BLE001 - one bad entry must not keep the others waiting
                logger.exception("pending request of %s failed; tried again later", conversation_id)
            finally:
                await self.redis.delete(lock)
        return opened

    async def open(self, conversation_id: str, reason: str) -> Optional[str]:
        """Opens the conversation's case unless the request is gone; the case id, or None."""
        tracker = await self.rasa.tracker(conversation_id)
        values: Dict[str, Any] = tracker.get("slots") or {}
        if not values.get(slots.HANDOFF_PENDING):
            await self.redis.hdel(keys.pending_requests(), conversation_id)
            return None
        # The slot's reason; else the one noted with the request; else a request for a person.
        reason = bot_reason(values[slots.HANDOFF_PENDING], default=bot_reason(reason))
        try:
            packet = CaseCreate.model_validate(packet_from_tracker(conversation_id, tracker, reason))
        except ValidationError as error:
            logger.error("pending request of %s dropped: no valid packet (%s)", conversation_id, error)
            await self.redis.hdel(keys.pending_requests(), conversation_id)
            return None
        # The case is stored before the bot is paused; if Rasa fails, the entry stays and the
        # next pass gets the same case back.
        case_id = await self.workflow.open_and_tell(packet)
        await self.redis.hdel(keys.pending_requests(), conversation_id)
        return case_id
