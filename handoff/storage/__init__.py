"""The service's state in Redis, one module per concern.

- :mod:`~handoff.storage.cases`: cases, the queue, reply promises and notes;
- :mod:`~handoff.storage.conversations`: live conversations and transcripts;
- :mod:`~handoff.storage.agents`: agents, roles and presence;
- :mod:`~handoff.storage.sessions`: sessions and failed sign-ins;
- :mod:`~handoff.storage.common`: the clock and time formats.

Everything lives in Redis, so several instances behind a load balancer share it. Refusals are
the domain errors of :mod:`handoff.errors`; :class:`handoff.store.Store` puts the parts together.
"""

from handoff.storage.agents import Agent, AgentStore
from handoff.storage.cases import CaseStore
from handoff.storage.common import Clock, iso, iso_from_timestamp, parse_iso, utc_now
from handoff.storage.conversations import ConversationStore
from handoff.storage.sessions import Session, SessionStore

__all__ = ["Agent", "AgentStore", "CaseStore", "Clock", "ConversationStore", "Session", "SessionStore",
           "iso", "iso_from_timestamp", "parse_iso", "utc_now"]
