"""The case workflow: open, claim, take over, answer, hand back, resolve; publish; tell the customer.

Every router (and the late opening of waiting requests, handoff/pending.py) goes through
:class:`CaseWorkflow`, so each step that touches both Rasa and the stored case has one home and
one order. The order follows one rule: **Rasa is paused only while the store holds an open case
for the conversation** (queued, or claimed by an agent), so a customer is never left with a
silent bot that no agent can see, and no case is lost:

- steps that pause the bot (take over, a request opened late) store the case first and pause
  Rasa after; a store failure pauses nothing, and a pause that fails undoes the stored claim
  (a takeover's new case is removed, a queued case goes back to the queue) before answering;
- steps that give the conversation back to the bot (hand back, resolve) call Rasa first and
  close the case after; a Rasa failure changes nothing stored, and a store failure after it
  leaves the case open (visible, and the agent can try again) with the bot answering.

Refusals are :mod:`handoff.errors`; the API turns them into HTTP answers (handoff/api/errors.py).
"""

from __future__ import annotations

import logging
import uuid
from typing import List, Optional, Tuple

from redis.exceptions import RedisError

from contract import slots
from contract.dates import honest_wait
from contract.packet import packet_from_tracker
from handoff.consumer import Hub
from handoff.errors import Conflict, ConversationNotFound, HandoffError, RasaUnavailable
from handoff.models import CaseCreate, CaseCreated, CasePublic, TranscriptLine
from handoff.rasa_client import RasaClient, RasaError
from handoff.roles import SUPERVISOR, has_role, require_case_access
from handoff.storage.agents import Agent
from handoff.storage.common import iso, iso_from_timestamp
from handoff.store import Store

logger = logging.getLogger(__name__)


class CaseWorkflow:
    """The service's use cases over the store, Rasa and the consoles' pushes.

    Args:
        store: the Redis-backed state.
        rasa: Rasa's HTTP API (pause, resume, agent messages, the customer's notices).
        hub: pushes to every console.
    """

    def __init__(self, store: Store, rasa: RasaClient, hub: Hub) -> None:
        self.store = store
        self.rasa = rasa
        self.hub = hub

    # --- opening ---------------------------------------------------------------------------------

    async def open(self, packet: CaseCreate) -> Tuple[CaseCreated, bool]:
        """The bot's request: opens a case, or returns the conversation's open one (adding the
        identity the bot verified since, when the case had none).

        The bot pauses itself after this answer, so nothing is asked of Rasa here.

        Returns:
            ``(answer, created)``: what the bot tells the customer, and whether the case is new.
        """
        case_id, created = await self.store.open_case(packet)
        answer = await self.store.case_created(case_id)
        if created:
            logger.info("case %s opened (%s, %s)", case_id, packet.reason, answer.status)
            await self.publish(await self.store.get_case(case_id))
        elif await self.store.add_identity(case_id, packet.identity.model_dump(mode="json")):
            # Identified while waiting: the agent's card shows who it is at once.
            logger.info("case %s: customer identified while waiting", case_id)
            await self.publish(await self.store.get_case(case_id))
        return answer, created

    async def open_and_tell(self, packet: CaseCreate) -> str:
        """A request for a person the service could not take at the time (handoff/pending.py):
        opens the case, then pauses the bot and tells the customer the honest wait.

        The case is stored before Rasa is asked: if Rasa fails, the case waits in the queue
        (visible) and the bot still answers; the caller tries again and gets the same case.

        Raises:
            RasaError: the bot was not paused or the customer not told (the case is stored).
        """
        case_id, created = await self.store.open_case(packet)
        answer = await self.store.case_created(case_id)
        if created:
            logger.info("case %s opened late (%s, %s)", case_id, packet.reason, answer.status)
            await self.publish(await self.store.get_case(case_id))
        wait = honest_wait(answer.model_dump(), packet.language)
        response = wait.pop("response")
        await self.rasa.take_pending_request(
            packet.conversation_id,
            {slots.HANDOFF_PENDING: None, slots.HANDOFF_CASE_ID: case_id, slots.HANDOFF_REASON: packet.reason, **wait},
            response)
        return case_id

    # --- owning ----------------------------------------------------------------------------------

    async def claim(self, case_id: str, agent: Agent) -> CasePublic:
        """Makes ``agent`` the owner of a queued case (atomic; the customer hears who joined).

        The bot was paused when the case was queued; the notice is the only Rasa call, and its
        failure does not undo the claim.

        Raises:
            CaseNotFound, Conflict: unknown case; someone else was first or it is closed.
        """
        already_mine = (await self.store.get_case(case_id)).owner == agent.username
        await self.store.claim(case_id, agent)
        case = await self.store.get_case(case_id)
        if not already_mine:
            await self.announce(case.conversation_id, agent.name)
        await self.publish(case)
        return case

    async def take_over(self, conversation_id: str, agent: Agent) -> CasePublic:
        """Takes a conversation from the bot: a case (reason ``takeover``) claimed by ``agent``,
        then the bot paused. A queued case of the conversation is claimed instead; a case a
        colleague owns is taken over by a supervisor (the bot is paused already).

        Raises:
            Conflict: a colleague owns it (and ``agent`` is no supervisor), or it changed meanwhile.
            ConversationNotFound: neither the service nor Rasa knows the conversation.
            RasaUnavailable: the tracker could not be read, or the bot not paused (nothing stays
                changed: the claim is undone).
        """
        existing = await self.store.open_case_of(conversation_id)
        if existing and existing.status == "human":
            if existing.owner == agent.username:
                return existing
            if not has_role(agent, SUPERVISOR):
                raise Conflict(f"claimed by {existing.owner_name}")
            return await self._take_from_colleague(existing, agent)
        try:
            tracker = await self.rasa.tracker(conversation_id)
        except RasaError as error:
            raise RasaUnavailable(f"not taken over: {error}") from error
        if not existing and not tracker.get("events") and not await self.store.conversation_known(conversation_id):
            raise ConversationNotFound()
        # The case first: if the store fails, the bot was never paused and keeps answering.
        opened = False
        if existing:
            case_id = existing.id
            await self.store.claim(case_id, agent)
        else:
            packet = CaseCreate.model_validate(packet_from_tracker(conversation_id, tracker))
            case_id, opened = await self.store.open_case(packet, owner=agent)
            if not opened:
                # Someone opened a case in between (the bot, or another agent): the claim decides.
                await self.store.claim(case_id, agent)
        try:
            await self.rasa.pause(conversation_id)
        except RasaError as error:
            outcome = await self._undo_takeover(case_id, conversation_id, agent, opened)
            raise RasaUnavailable(f"not taken over: {error}; {outcome}") from error
        case = await self.store.get_case(case_id)
        await self.announce(conversation_id, agent.name)
        logger.info("conversation taken over by %s (case %s)", agent.username, case_id)
        await self.publish(case)
        return case

    async def _undo_takeover(self, case_id: str, conversation_id: str, agent: Agent, opened: bool) -> str:
        """The bot could not be paused: the claim is undone; says what the conversation is now."""
        try:
            if opened:
                await self.store.discard(case_id, agent)
            else:
                await self.store.release(case_id, agent)
        except (HandoffError, RedisError, OSError) as error:
            # The case stays the agent's and visible: they can hand it back or resolve it.
            logger.error("takeover of case %s: the bot was not paused and the claim could not be undone (%s)",
                         case_id, type(error).__name__)
            return "the case is yours but the bot was not paused: hand it back or try again"
        if not opened:
            logger.warning("takeover of case %s failed: the case is queued again", case_id)
            await self._publish_by_id(case_id)
            return "the case is back in the queue"
        # A pause that timed out may still have reached Rasa: without the case that would be a
        # silent bot, so the bot is resumed (harmless when it was never paused).
        try:
            await self.rasa.resume(conversation_id)
        except RasaError:
            pass
        logger.warning("takeover of %s failed: the bot keeps the conversation", conversation_id)
        return "the bot keeps the conversation"

    async def _take_from_colleague(self, case: CasePublic, agent: Agent) -> CasePublic:
        """A supervisor becomes the owner of a colleague's case (atomic: Conflict if it changed)."""
        await self.store.reassign(case.id, agent, expected_owner=case.owner or "")
        taken = await self.store.get_case(case.id)
        await self.announce(case.conversation_id, agent.name)
        logger.info("case %s taken over from %s by %s", case.id, case.owner, agent.username)
        await self.publish(taken)
        return taken

    # --- working on a case -----------------------------------------------------------------------

    async def send_message(self, case_id: str, agent: Agent, text: str) -> TranscriptLine:
        """Delivers the owner's (or a supervisor's) message to the customer's channel, then
        records it (the reply keeps the case's reply promise).

        Raises:
            CaseNotFound, Conflict, NotAllowed: unknown case; not claimed; not ``agent``'s.
            RasaUnavailable: not delivered (nothing recorded).
        """
        case = await self.store.get_case(case_id)
        if case.status != "human":
            raise Conflict(f"case is {case.status}: messages are closed")
        require_case_access(agent, case, "reply on this case")
        message_id = uuid.uuid4().hex
        try:
            await self.rasa.send_agent_message(case.conversation_id, text, agent.username, agent.name, message_id)
        except RasaError as error:
            raise RasaUnavailable(f"message not delivered: {error}") from error
        line = TranscriptLine.of("agent", text, iso(self.store.clock()), agent.name)
        # Recorded now (the console shows it at once); the broker's copy has the same key and is ignored.
        if await self.store.record_line(case.conversation_id, f"m:{message_id}", line, self.store.clock().timestamp()):
            await self.hub.publish_line(case.conversation_id, line)
        await self.store.keep_promise(case_id)
        await self.publish(await self.store.get_case(case_id))
        return line

    async def add_note(self, case_id: str, agent: Agent, text: str) -> CasePublic:
        """A private note on the case (never sent to the customer).

        Raises:
            CaseNotFound: unknown case.
        """
        await self.store.add_note(case_id, agent, text)
        case = await self.store.get_case(case_id)
        await self.hub.publish_case(case)
        return case

    # --- giving the conversation back ------------------------------------------------------------

    async def hand_back(self, case_id: str, agent: Agent) -> CasePublic:
        """The owner (or a supervisor) gives the conversation back to the bot: Rasa resumes and
        runs ``action_handback``, then the case is closed as ``bot``.

        Raises:
            CaseNotFound, Conflict, NotAllowed: unknown case; not claimed or changed; not ``agent``'s.
            RasaUnavailable: not handed back (the case stays the owner's).
        """
        case = await self.store.get_case(case_id)
        if case.status != "human":
            raise Conflict(f"case is {case.status}")
        require_case_access(agent, case, "hand this case back")
        try:
            await self.rasa.hand_back(case.conversation_id)
        except RasaError as error:
            raise RasaUnavailable(f"not handed back: {error}") from error
        await self.store.finish(case_id, expected_status="human", expected_owner=case.owner, target="bot")
        case = await self.store.get_case(case_id)
        logger.info("case %s handed back by %s", case_id, agent.username)
        await self.publish(case)
        return case

    async def resolve(self, case_id: str, agent: Agent, outcome: str) -> CasePublic:
        """Closes the case with its outcome; the bot owns the conversation again (no message).

        Raises:
            CaseNotFound, Conflict, NotAllowed: unknown case; resolved already or changed; a
                colleague's claimed case.
            RasaUnavailable: the bot could not be resumed (the case stays open).
        """
        case = await self.store.get_case(case_id)
        if case.status == "resolved":
            raise Conflict("case is already resolved")
        if case.status == "human":
            require_case_access(agent, case, "resolve this case")
        if case.status in ("queued", "human"):
            # A handed-back case is already the bot's; the others are paused in Rasa until now.
            try:
                await self.rasa.resume(case.conversation_id)
            except RasaError as error:
                raise RasaUnavailable(f"not resolved: {error}") from error
        await self.store.finish(case_id, expected_status=case.status,
                                expected_owner=case.owner if case.status == "human" else None,
                                target="resolved", outcome=outcome)
        case = await self.store.get_case(case_id)
        logger.info("case %s resolved by %s", case_id, agent.username)
        await self.publish(case)
        return case

    # --- what consoles and customers see ---------------------------------------------------------

    async def transcript(self, conversation_id: str) -> List[TranscriptLine]:
        """The stream's transcript; before any event arrived, the one the bot sent with its case."""
        lines = await self.store.transcript(conversation_id)
        if lines:
            return lines
        case = await self.store.latest_case_of(conversation_id)
        return packet_transcript(case) if case else []

    async def publish(self, case: CasePublic) -> None:
        """Tells every console about a changed case and its conversation."""
        await self.hub.publish_case(case)
        await self.hub.publish_conversation(await self.store.conversation(case.conversation_id))

    async def _publish_by_id(self, case_id: str) -> None:
        """Publishes a case after a compensation; a failure only costs the consoles a push."""
        try:
            case: Optional[CasePublic] = await self.store.find_case(case_id)
            if case is not None:
                await self.publish(case)
        except (RedisError, OSError) as error:
            logger.warning("case %s not published (%s)", case_id, type(error).__name__)

    async def announce(self, conversation_id: str, agent_name: str) -> None:
        """The customer hears a person joined; a failure here must not undo the claim."""
        try:
            await self.rasa.announce_agent(conversation_id, agent_name)
        except RasaError as error:
            logger.warning("could not announce the agent in %s: %s", conversation_id, error)


def packet_transcript(case: CasePublic) -> List[TranscriptLine]:
    """The packet's ``transcript`` as transcript lines."""
    lines = []
    for line in case.packet.get("transcript") or []:
        if isinstance(line, dict) and line.get("text") and line.get("from") in ("customer", "bot", "agent"):
            lines.append(TranscriptLine.of(line["from"], line["text"], iso_from_timestamp(line.get("at"))))
    return lines
