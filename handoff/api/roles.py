"""What each role may do, for the routes: the policy lives in :mod:`handoff.roles`."""

from handoff.roles import (
    ADMIN, AGENT, SUPERVISOR, effective, has_role, may_work_on, owner_label, rank, require_case_access,
)

__all__ = ["ADMIN", "AGENT", "SUPERVISOR", "effective", "has_role", "may_work_on", "owner_label", "rank",
           "require_case_access"]
