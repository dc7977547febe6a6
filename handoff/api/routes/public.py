"""Public endpoints for the website chat widget: a customer's own transcript.

No sign-in: the widget's session id (the Rasa conversation id of a web chat) is the bearer
secret. It is random (128 bits, ``crypto.randomUUID``) and kept in the customer's browser, so:

- it travels in a request header (``X-Helder-Session``), never in the URL: URLs end up in access
  logs (uvicorn's, nginx's, a load balancer's), browser history and ``Referer`` headers, and
  anyone who reads a log line must not be able to read (or, over socket.io, write) the chat;
- only ids of 32 to 128 hex characters are looked up (phone numbers of WhatsApp conversations,
  REST senders and other guessable ids never match), and only conversations of the web chat
  channel (``socketio``) are answered;
- an unknown, malformed, missing or other-channel id gets the same 404;
- the answer holds the customer, bot and agent lines of that one conversation (with the agent's
  display name), nothing else: no case, notes, identity or packet;
- CORS is granted here only, to the shop origins in ``HANDOFF_WIDGET_ORIGINS``, without
  credentials: the agents' API keeps its same-origin cookie rules. The custom header makes the
  browser send a preflight, which allows exactly that header.
"""

from __future__ import annotations

from typing import Annotated, Dict, List

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from contract import channels
from contract.channels import valid_session_id
from handoff.api.deps import SettingsDep, StoreDep, WorkflowDep
from handoff.models import TranscriptLine
from handoff.settings import Settings

router = APIRouter(prefix="/public", tags=["public"])

SESSION_HEADER = "X-Helder-Session"
TRANSCRIPT_PATH = "/conversations/transcript"
NOT_FOUND = "conversation not found"


def cors_headers(request: Request, settings: Settings) -> Dict[str, str]:
    """CORS headers for an allowed widget origin (none for others); never with credentials."""
    headers = {"Vary": "Origin", "Cache-Control": "no-store"}
    origin = request.headers.get("origin")
    if origin and origin in settings.widget_origin_list:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


@router.get(TRANSCRIPT_PATH, response_model=List[TranscriptLine],
            responses={404: {"description": "unknown, malformed, missing or not a web chat session id"}})
async def transcript(
    request: Request, settings: SettingsDep, store: StoreDep, workflow: WorkflowDep,
    # No length or pattern here: a malformed id gets the same 404 as an unknown one, not a 422.
    session_id: Annotated[str, Header(alias=SESSION_HEADER, description="the widget's session id (the secret)")] = "",
) -> JSONResponse:
    """The web chat's lines, oldest first: ``[{"from": "customer|bot|agent", "text", "at", "agent_name"}]``."""
    headers = cors_headers(request, settings)
    # Exactly one header: with several, which one counts would be up to the framework.
    single = len(request.headers.getlist(SESSION_HEADER)) == 1
    if not single or not valid_session_id(session_id) or not await store.conversation_known(session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND, headers=headers)
    conversation = await store.conversation(session_id)
    if conversation is None or conversation.channel != channels.WEB:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND, headers=headers)
    lines = await workflow.transcript(session_id)
    body = [line.model_dump(mode="json", by_alias=True) for line in lines if line.from_ in ("customer", "bot", "agent")]
    return JSONResponse(body, headers=headers)


@router.options(TRANSCRIPT_PATH, include_in_schema=False)
async def transcript_preflight(request: Request, settings: SettingsDep) -> Response:
    """CORS preflight: the session header is not a simple header, so the browser asks first."""
    headers = cors_headers(request, settings)
    if "Access-Control-Allow-Origin" in headers:
        headers.update({"Access-Control-Allow-Methods": "GET, OPTIONS",
                        "Access-Control-Allow-Headers": f"Accept, Content-Type, {SESSION_HEADER}",
                        "Access-Control-Max-Age": "600"})
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)
