"""Cases: the bot opens them; agents list, claim, answer, annotate, hand back and resolve.

Who may do what is :mod:`handoff.api.roles`: the owner (or a supervisor) answers, hands back and
resolves a claimed case; anyone claims or resolves a queued one and adds private notes.
"""

from __future__ import annotations

import logging
import uuid
from typing import List, Optional

from fastapi import APIRouter, HTTPException, Query, Response, status

from handoff.api.deps import AgentDep, BotDep, HubDep, RasaDep, StoreDep
from handoff.api.roles import require_case_access
from handoff.models import (
    CaseCreate, CaseCreated, CaseDetail, CasePublic, CaseStatus, MessageCreate, NoteCreate, ResolveRequest,
    TranscriptLine,
)
from handoff.consumer import Hub
from handoff.rasa_client import RasaClient, RasaError
from handoff.store import Store, iso, iso_from_timestamp

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["cases"])


async def transcript_of(store: Store, conversation_id: str) -> List[TranscriptLine]:
    """The stream's transcript; before any event arrived, the one the bot sent with its case."""
    lines = await store.transcript(conversation_id)
    if lines:
        return lines
    case = await store.latest_case_of(conversation_id)
    return packet_transcript(case) if case else []


def packet_transcript(case: CasePublic) -> List[TranscriptLine]:
    """The packet's ``transcript`` as transcript lines."""
    lines = []
    for line in case.packet.get("transcript") or []:
        if isinstance(line, dict) and line.get("text") and line.get("from") in ("customer", "bot", "agent"):
            lines.append(TranscriptLine.of(line["from"], line["text"], iso_from_timestamp(line.get("at"))))
    return lines


async def publish_case(store: Store, hub: Hub, case: CasePublic) -> None:
    """Tells every console about a changed case and its conversation."""
    await hub.publish_case(case)
    await hub.publish_conversation(await store.conversation(case.conversation_id))


@router.post("/cases", response_model=CaseCreated, dependencies=[BotDep],
             responses={200: {"description": "the conversation's open case"}, 201: {"description": "new case"}})
async def open_case(packet: CaseCreate, response: Response, store: StoreDep, hub: HubDep) -> CaseCreated:
    """Opens a case for the bot, or returns the conversation's open one (adding the identity the
    bot verified since, when the case had none)."""
    case_id, created = await store.open_case(packet)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    answer = await store.case_created(case_id)
    if created:
        logger.info("case %s opened (%s, %s)", case_id, packet.reason, answer.status)
        await publish_case(store, hub, await store.get_case(case_id))
    elif await store.add_identity(case_id, packet.identity.model_dump(mode="json")):
        # Identified while waiting: the agent's card shows who it is at once.
        logger.info("case %s: customer identified while waiting", case_id)
        await publish_case(store, hub, await store.get_case(case_id))
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
async def get_case(case_id: str, _: AgentDep, store: StoreDep) -> CaseDetail:
    """One case with its conversation's transcript."""
    case = await store.get_case(case_id)
    return CaseDetail(**case.model_dump(), transcript=await transcript_of(store, case.conversation_id))


@router.post("/cases/{case_id}/claim", response_model=CasePublic)
async def claim(case_id: str, me: AgentDep, store: StoreDep, rasa: RasaDep, hub: HubDep) -> CasePublic:
    """Makes the signed-in agent the owner (atomic; 409 if someone else was first)."""
    already_mine = (await store.get_case(case_id)).owner == me.agent.username
    await store.claim(case_id, me.agent)
    case = await store.get_case(case_id)
    if not already_mine:
        await announce_agent(rasa, case.conversation_id, me.agent.name)
    await publish_case(store, hub, case)
    return case


async def announce_agent(rasa: RasaClient, conversation_id: str, agent_name: str) -> None:
    """The customer hears a person joined; a failure here must not undo the claim."""
    try:
        await rasa.announce_agent(conversation_id, agent_name)
    except RasaError as error:
        logger.warning("could not announce the agent in %s: %s", conversation_id, error)


@router.post("/cases/{case_id}/messages", response_model=TranscriptLine)
async def send_message(
    case_id: str, body: MessageCreate, me: AgentDep, store: StoreDep, rasa: RasaDep, hub: HubDep,
) -> TranscriptLine:
    """Delivers the owner's (or a supervisor's) message to the customer's channel through Rasa."""
    case = await store.get_case(case_id)
    if case.status != "human":
        raise HTTPException(status.HTTP_409_CONFLICT, f"case is {case.status}: messages are closed")
    require_case_access(me.agent, case, "reply on this case")
    message_id = uuid.uuid4().hex
    try:
        await rasa.send_agent_message(case.conversation_id, body.text, me.agent.username, me.agent.name, message_id)
    except RasaError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"message not delivered: {error}") from error
    line = TranscriptLine.of("agent", body.text, iso(store.clock()), me.agent.name)
    # Recorded now (the console shows it at once); the broker's copy has the same key and is ignored.
    if await store.record_line(case.conversation_id, f"m:{message_id}", line, store.clock().timestamp()):
        await hub.publish_line(case.conversation_id, line)
    await store.keep_promise(case_id)
    await publish_case(store, hub, await store.get_case(case_id))
    return line


@router.post("/cases/{case_id}/notes", response_model=CasePublic)
async def add_note(case_id: str, body: NoteCreate, me: AgentDep, store: StoreDep, hub: HubDep) -> CasePublic:
    """A private note on the case (never sent to the customer)."""
    await store.add_note(case_id, me.agent, body.text)
    case = await store.get_case(case_id)
    await hub.publish_case(case)
    return case


@router.post("/cases/{case_id}/handback", response_model=CasePublic)
async def hand_back(case_id: str, me: AgentDep, store: StoreDep, rasa: RasaDep, hub: HubDep) -> CasePublic:
    """The owner (or a supervisor) gives the conversation back to the bot (resume + ``action_handback``)."""
    case = await store.get_case(case_id)
    if case.status != "human":
        raise HTTPException(status.HTTP_409_CONFLICT, f"case is {case.status}")
    require_case_access(me.agent, case, "hand this case back")
    try:
        await rasa.hand_back(case.conversation_id)
    except RasaError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"not handed back: {error}") from error
    await store.finish(case_id, expected_status="human", expected_owner=case.owner, target="bot")
    case = await store.get_case(case_id)
    logger.info("case %s handed back by %s", case_id, me.agent.username)
    await publish_case(store, hub, case)
    return case


@router.post("/cases/{case_id}/resolve", response_model=CasePublic)
async def resolve(
    case_id: str, body: ResolveRequest, me: AgentDep, store: StoreDep, rasa: RasaDep, hub: HubDep,
) -> CasePublic:
    """Closes the case with its outcome; the bot owns the conversation again (no message)."""
    case = await store.get_case(case_id)
    if case.status == "resolved":
        raise HTTPException(status.HTTP_409_CONFLICT, "case is already resolved")
    if case.status == "human":
        require_case_access(me.agent, case, "resolve this case")
    if case.status in ("queued", "human"):
        # A handed-back case is already the bot's; the others are paused in Rasa until now.
        try:
            await rasa.resume(case.conversation_id)
        except RasaError as error:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"not resolved: {error}") from error
    await store.finish(case_id, expected_status=case.status,
                       expected_owner=case.owner if case.status == "human" else None,
                       target="resolved", outcome=body.outcome)
    case = await store.get_case(case_id)
    logger.info("case %s resolved by %s", case_id, me.agent.username)
    await publish_case(store, hub, case)
    return case
