"""Administration, for admins only: erasure of one customer's data (AVG/GDPR) and agents' roles.

An admin is a signed-in agent with the role ``admin`` (``python -m handoff.agents add ... --role
admin``, or ``PUT /api/admin/agents/{username}/role`` by another admin) or listed in
``HANDOFF_ADMINS``. The check is on the router, so a route added here later is admin-only too; like
every change it also needs the session's CSRF token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from handoff.agents import normalise_username
from handoff.api import roles
from handoff.api.deps import AdminDep, SettingsDep, StoreDep, require_admin
from handoff.models import AgentPublic, RoleChange
from handoff.erasure import Erasure

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class ErasureRequest(BaseModel):
    """Besides the customer number: phone numbers (WhatsApp conversations) and known conversation ids."""

    phones: List[str] = Field(default_factory=list, max_length=20)
    conversations: List[str] = Field(default_factory=list, max_length=100)


@router.post("/customers/{customer_id}/erase")
async def erase_customer(
    customer_id: str, request: Request, settings: SettingsDep, admin: AdminDep,
    body: ErasureRequest = ErasureRequest(),  # noqa: B008 (FastAPI: the body is optional; never mutated)
) -> Dict[str, Any]:
    """Erases the customer's trackers, cases, notes, promises, transcripts and log mentions."""
    customer_id = customer_id.strip()
    if not customer_id or len(customer_id) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a customer number is needed")
    erasure: Erasure = request.app.state.erasure
    logs = [Path(settings.log_dir)] if settings.log_dir else []
    report = await erasure.erase_customer(customer_id, body.phones, logs, body.conversations)
    # The customer number itself is not logged: that would put it back into the logs.
    logger.info("erasure by %s: %d conversations, %d cases, %d trackers", admin.agent.username,
                len(report.conversations), len(report.cases), report.trackers)
    return report.as_dict()


@router.get("/agents", response_model=List[AgentPublic])
async def list_agents(store: StoreDep, settings: SettingsDep) -> List[AgentPublic]:
    """Every agent with the role they act in (``HANDOFF_ADMINS`` included)."""
    return [roles.effective(agent, settings).public() for agent in await store.list_agents()]


@router.put("/agents/{username}/role", response_model=AgentPublic)
async def set_role(
    username: str, body: RoleChange, admin: AdminDep, store: StoreDep, settings: SettingsDep,
) -> AgentPublic:
    """Gives an agent another role, effective on their next request.

    An admin cannot change their own role: the last admin must not lock everyone out by a slip
    (another admin, or the command line, can).
    """
    username = normalise_username(username)
    if username == admin.agent.username:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot change your own role")
    if not await store.set_agent_role(username, body.role):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "agent not found")
    agent = await store.get_agent(username)
    if agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "agent not found")
    logger.info("role of %s set to %s by %s", username, body.role, admin.agent.username)
    return roles.effective(agent, settings).public()
