"""Live conversations: the list, a transcript, and taking over from the bot (or, for a supervisor,
from a colleague)."""

from __future__ import annotations

import logging
from typing import Annotated, List

from fastapi import APIRouter, HTTPException, Path, Query, status

from handoff.api.deps import AgentDep, HubDep, RasaDep, SignedIn, StoreDep
from handoff.api.roles import SUPERVISOR, has_role
from handoff.api.routes.cases import announce_agent, publish_case, transcript_of
from handoff.consumer import Hub
from handoff.models import CaseCreate, CasePublic, ConversationPublic, TranscriptLine
from handoff.rasa_client import RasaClient, RasaError, packet_from_tracker
from handoff.store import Store

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/conversations", tags=["conversations"])
ConversationId = Annotated[str, Path(min_length=1, max_length=256)]


@router.get("", response_model=List[ConversationPublic])
async def conversations(_: AgentDep, store: StoreDep, limit: int = Query(200, ge=1, le=1000)) -> List[ConversationPublic]:
    """Every conversation seen, newest activity first, with who owns it."""
    return await store.conversations(limit=limit)


@router.get("/{conversation_id}/transcript", response_model=List[TranscriptLine])
async def transcript(conversation_id: ConversationId, _: AgentDep, store: StoreDep) -> List[TranscriptLine]:
    """Customer, bot and agent lines, oldest first."""
    if not await store.conversation_known(conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "conversation not found")
    return await transcript_of(store, conversation_id)


@router.post("/{conversation_id}/takeover", response_model=CasePublic)
async def take_over(
    conversation_id: ConversationId, me: AgentDep, store: StoreDep, rasa: RasaDep, hub: HubDep,
) -> CasePublic:
    """Takes a conversation from the bot: case (reason ``takeover``), claimed by me, Rasa paused.

    A conversation a colleague owns: 409 for an agent; a supervisor takes the case over from them
    (Rasa is paused already; the customer hears who joined).
    """
    existing = await store.open_case_of(conversation_id)
    if existing and existing.status == "human":
        if existing.owner == me.agent.username:
            return existing
        if not has_role(me.agent, SUPERVISOR):
            raise HTTPException(status.HTTP_409_CONFLICT, f"claimed by {existing.owner_name}")
        return await _take_from_colleague(existing, me, store, rasa, hub)
    try:
        tracker = await rasa.tracker(conversation_id)
        if not existing and not tracker.get("events") and not await store.conversation_known(conversation_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "conversation not found")
        # Paused first: from the moment the case is ours the bot must be silent.
        await rasa.pause(conversation_id)
    except RasaError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"not taken over: {error}") from error
    if existing:
        await store.claim(existing.id, me.agent)
        case_id = existing.id
    else:
        packet = CaseCreate.model_validate(packet_from_tracker(conversation_id, tracker))
        case_id, created = await store.open_case(packet, owner=me.agent)
        if not created:
            # Someone opened a case in between (the bot, or another agent): the claim decides.
            await store.claim(case_id, me.agent)
    case = await store.get_case(case_id)
    await announce_agent(rasa, conversation_id, me.agent.name)
    logger.info("conversation taken over by %s (case %s)", me.agent.username, case_id)
    await publish_case(store, hub, case)
    return case


async def _take_from_colleague(
    case: CasePublic, me: SignedIn, store: Store, rasa: RasaClient, hub: Hub,
) -> CasePublic:
    """A supervisor becomes the owner of a colleague's case (atomic: 409 if it changed meanwhile)."""
    await store.reassign(case.id, me.agent, expected_owner=case.owner or "")
    taken = await store.get_case(case.id)
    await announce_agent(rasa, case.conversation_id, me.agent.name)
    logger.info("case %s taken over from %s by %s", case.id, case.owner, me.agent.username)
    await publish_case(store, hub, taken)
    return taken
