"""Domain errors: raised by services with a message a person can read as it is."""


class DomainError(Exception):
    """A transition that is not allowed; ``str(error)`` is shown to the person."""

    code = "not_allowed"

    def __init__(self, message, *, code=None, field=None):
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
