"""Domain errors: raised by services with a message a person can read as it is.

Messages are written with ``gettext`` (``_("... %(name)s ...") % {...}``) so that they reach
the person in their language; a lazy message is rendered when the error is raised.
"""


class DomainError(Exception):
    """A transition that is not allowed; ``str(error)`` is shown to the person."""

    code = "not_allowed"

    def __init__(self, message, *, code=None, field=None):
        message = str(message)
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field


class NotEligible(DomainError):
    code = "not_eligible"


class InvalidRequest(DomainError):
    """Bad input: a missing justification, a wrong answer, a bad period. ``field`` names it."""

    code = "invalid"


class StateConflict(DomainError):
    """The object is no longer in a state that allows this (already decided, canceled...)."""

    code = "conflict"


class PermissionDenied(DomainError):
    code = "forbidden"
