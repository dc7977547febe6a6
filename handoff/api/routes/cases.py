"""Cases: the bot opens them; agents list, claim, answer, annotate, hand back and resolve.

Who may do what is :mod:`handoff.api.roles`: the owner (or a supervisor) answers, hands back and
resolves a claimed case; anyone claims or resolves a queued one and adds private notes. Every
change goes through the case workflow (handoff/workflow.py); errors become HTTP answers in
handoff/api/errors.py.
"""

from __future__ import annotations

from typing import List, Optional

from fastapi import APIRouter, Query, Response, status

from handoff.api.deps import AgentDep, BotDep, StoreDep, WorkflowDep
from handoff.models import (
    CaseCreate, CaseCreated, CaseDetail, CasePublic, CaseStatus, MessageCreate, NoteCreate, ResolveRequest,
    TranscriptLine,
)

router = APIRouter(prefix="/api", tags=["cases"])


@router.post("/cases", response_model=CaseCreated, dependencies=[BotDep],
             responses={200: {"description": "the conversation's open case"}, 201: {"description": "new case"}})
async def open_case(packet: CaseCreate, response: Response, workflow: WorkflowDep) -> CaseCreated:
    """Opens a case for the bot, or returns the conversation's open one (adding the identity the
    bot verified since, when the case had none)."""
    answer, created = await workflow.open(packet)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return answer


@router.get("/queue", response_model=List[CasePublic])
async def queue(_: AgentDep, store: StoreDep) -> List[CasePublic]:
    """Queued cases, oldest first."""
    return await store.queue()


@router.get("/cases", response_model=List[CasePublic])
async def list_cases(
    _: AgentDep, store: StoreDep, status: Optional[CaseStatus] = None,
    conversation_id: Optional[str] = Query(None, max_length=256), limit: int = Query(200, ge=1, le=1000),
) -> List[CasePublic]:
    """Cases; by default every case that is not resolved."""
    return await store.list_cases(status, conversation_id=conversation_id, limit=limit)


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(case_id: str, _: AgentDep, store: StoreDep, workflow: WorkflowDep) -> CaseDetail:
    """One case with its conversation's transcript."""
    case = await store.get_case(case_id)
    return CaseDetail(**case.model_dump(), transcript=await workflow.transcript(case.conversation_id))


@router.post("/cases/{case_id}/claim", response_model=CasePublic)
async def claim(case_id: str, me: AgentDep, workflow: WorkflowDep) -> CasePublic:
    """Makes the signed-in agent the owner (atomic; 409 if someone else was first)."""
    return await workflow.claim(case_id, me.agent)


@router.post("/cases/{case_id}/messages", response_model=TranscriptLine)
async def send_message(case_id: str, body: MessageCreate, me: AgentDep, workflow: WorkflowDep) -> TranscriptLine:
    """Delivers the owner's (or a supervisor's) message to the customer's channel through Rasa."""
    return await workflow.send_message(case_id, me.agent, body.text)


@router.post("/cases/{case_id}/notes", response_model=CasePublic)
async def add_note(case_id: str, body: NoteCreate, me: AgentDep, workflow: WorkflowDep) -> CasePublic:
    """A private note on the case (never sent to the customer)."""
    return await workflow.add_note(case_id, me.agent, body.text)


@router.post("/cases/{case_id}/handback", response_model=CasePublic)
async def hand_back(case_id: str, me: AgentDep, workflow: WorkflowDep) -> CasePublic:
    """The owner (or a supervisor) gives the conversation back to the bot (resume + ``action_handback``)."""
    return await workflow.hand_back(case_id, me.agent)


@router.post("/cases/{case_id}/resolve", response_model=CasePublic)
async def resolve(case_id: str, body: ResolveRequest, me: AgentDep, workflow: WorkflowDep) -> CasePublic:
    """Closes the case with its outcome; the bot owns the conversation again (no message)."""
    return await workflow.resolve(case_id, me.agent, body.outcome)
