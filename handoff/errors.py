"""The service's domain errors: what went wrong in the domain's words, never an HTTP status.

Storage (:mod:`handoff.storage`) and the case workflow (:mod:`handoff.workflow`) raise these; the
API maps each kind to its HTTP answer in one place (:mod:`handoff.api.errors`). ``str(error)`` is
the message for the agent (it never holds customer data).
"""

from __future__ import annotations


class HandoffError(Exception):
    """Base of the service's domain errors."""

    default_message = "the request could not be handled"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_message)

    @property
    def detail(self) -> str:
        """The message for the agent."""
        return str(self)


class NotFound(HandoffError):
    """The case or conversation does not exist."""

    default_message = "not found"


class CaseNotFound(NotFound):
    """No case with that id."""

    default_message = "case not found"


class ConversationNotFound(NotFound):
    """No conversation with that id, neither in the service nor in Rasa."""

    default_message = "conversation not found"


class Conflict(HandoffError):
    """The change does not fit the case's state: owned by someone else, closed, changed meanwhile."""

    default_message = "the case changed meanwhile"


class NotAllowed(HandoffError):
    """The agent's role does not allow this on this case."""

    default_message = "not allowed"


class RasaUnavailable(HandoffError):
    """A step that needed Rasa did not happen (Rasa unreachable or refusing); the message says
    which step and what stayed as it was."""

    default_message = "Rasa is unavailable"
