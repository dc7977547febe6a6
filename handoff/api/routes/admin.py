"""Administration: erasure of one customer's data (AVG/GDPR), for admin agents only.

An admin is a signed-in agent listed in ``HANDOFF_ADMINS``; like every change it needs the
session's CSRF token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from handoff.api.deps import AgentDep, SettingsDep, SignedIn
from handoff.privacy import Privacy

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/admin", tags=["admin"])


async def require_admin(me: AgentDep, settings: SettingsDep) -> SignedIn:
    """A signed-in agent named in ``HANDOFF_ADMINS``."""
    if me.agent.username not in settings.admin_list:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return me


class ErasureRequest(BaseModel):
    """Besides the customer number: phone numbers (WhatsApp conversations) and known conversation ids."""

    phones: List[str] = Field(default_factory=list, max_length=20)
    conversations: List[str] = Field(default_factory=list, max_length=100)


@router.post("/customers/{customer_id}/erase")
async def erase_customer(
    customer_id: str, request: Request, settings: SettingsDep, body: ErasureRequest = ErasureRequest(),
    admin: SignedIn = Depends(require_admin),
) -> Dict[str, Any]:
    """Erases the customer's trackers, cases, notes, promises, transcripts and log mentions."""
    customer_id = customer_id.strip()
    if not customer_id or len(customer_id) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a customer number is needed")
    privacy: Privacy = request.app.state.privacy
    logs = [Path(settings.log_dir)] if settings.log_dir else []
    report = await privacy.erase_customer(customer_id, body.phones, logs, body.conversations)
    # The customer number itself is not logged: that would put it back into the logs.
    logger.info("erasure by %s: %d conversations, %d cases, %d trackers", admin.agent.username,
                len(report.conversations), len(report.cases), report.trackers)
    return report.as_dict()
