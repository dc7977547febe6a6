"""Live conversations: the list, a transcript, and taking over from the bot (or, for a supervisor,
from a colleague)."""

from __future__ import annotations

from typing import Annotated, List

from fastapi import APIRouter, HTTPException, Path, Query, status

from handoff.api.deps import AgentDep, StoreDep, WorkflowDep
from handoff.models import CasePublic, ConversationPublic, TranscriptLine

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
ConversationId = Annotated[str, Path(min_length=1, max_length=256)]


@router.get("", response_model=List[ConversationPublic])
async def conversations(_: AgentDep, store: StoreDep, limit: int = Query(200, ge=1, le=1000)) -> List[ConversationPublic]:
    """Every conversation seen, newest activity first, with who owns it."""
    return await store.conversations(limit=limit)


@router.get("/{conversation_id}/transcript", response_model=List[TranscriptLine])
async def transcript(
    conversation_id: ConversationId, _: AgentDep, store: StoreDep, workflow: WorkflowDep,
) -> List[TranscriptLine]:
    """Customer, bot and agent lines, oldest first."""
    if not await store.conversation_known(conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "conversation not found")
    return await workflow.transcript(conversation_id)


@router.post("/{conversation_id}/takeover", response_model=CasePublic)
async def take_over(conversation_id: ConversationId, me: AgentDep, workflow: WorkflowDep) -> CasePublic:
    """Takes a conversation from the bot: case (reason ``takeover``), claimed by me, Rasa paused.

    A conversation a colleague owns: 409 for an agent; a supervisor takes the case over from them
    (Rasa is paused already; the customer hears who joined). Rasa failing: 502, and nothing stays
    changed (the bot keeps the conversation, or a queued case goes back to the queue).
    """
    return await workflow.take_over(conversation_id, me.agent)
