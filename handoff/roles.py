"""What each role may do: one place for the policy, used by the routes and ``/api/me``.

The roles are ordered, each one everything of the one before it:

- ``agent`` (the default): reads the queue, every case and every conversation (a colleague's case
  may come back to them tomorrow); claims queued cases and takes over conversations the bot has;
  writes to the customer, hands back and resolves only cases they own. Queued cases may be
  resolved by anyone (spam, duplicates: triage is part of working the queue) and private notes
  may be added to any case (they never reach the customer, and a colleague's hint is the point).
- ``supervisor``: also writes on, hands back and resolves a case another agent owns, and takes a
  claimed conversation over from its owner (the case becomes theirs; the customer hears who joined).
- ``admin``: also the ``/api/admin`` endpoints: erasure (AVG/GDPR) and managing agents' roles.

``HANDOFF_ADMINS`` (comma-separated usernames) still makes an agent an admin whatever the stored
role, so deployments from before roles keep working; the stored role is the one to use.

The policy is the domain's (the case workflow applies it too); the API reads it through
:mod:`handoff.api.roles`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from handoff.errors import NotAllowed
from handoff.models import ROLES, CasePublic
from handoff.settings import Settings
from handoff.storage.agents import Agent

AGENT, SUPERVISOR, ADMIN = ROLES


def rank(role: str) -> int:
    """The role's place in the order (an unknown role counts as the lowest)."""
    return ROLES.index(role) if role in ROLES else 0


def effective(agent: Agent, settings: Settings) -> Agent:
    """The agent with the role they act in: their stored role, or admin through ``HANDOFF_ADMINS``."""
    if agent.role != ADMIN and agent.username in settings.admin_list:
        return replace(agent, role=ADMIN)
    return agent


def has_role(agent: Agent, role: str) -> bool:
    """True when the agent's (effective) role is ``role`` or above."""
    return rank(agent.role) >= rank(role)


def may_work_on(agent: Agent, case: CasePublic) -> bool:
    """Whether the agent may write to the customer, hand back or resolve this claimed case."""
    return case.owner == agent.username or has_role(agent, SUPERVISOR)


def require_case_access(agent: Agent, case: CasePublic, doing: str) -> None:
    """Refuses (:class:`NotAllowed`) unless the agent owns the case or is a supervisor; ``doing``
    completes "only ... can"."""
    if not may_work_on(agent, case):
        raise NotAllowed(f"only {owner_label(case)} can {doing}")


def owner_label(case: CasePublic) -> str:
    """Who may act on the case, for the 403's message."""
    name: Optional[str] = case.owner_name or case.owner
    return f"{name} (or a supervisor)" if name else "its owner (or a supervisor)"
