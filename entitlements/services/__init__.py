"""Every write that changes the state of a request or an assignment.

``requests`` holds submission, cancellation and the start of scheduled requests;
``assignments`` holds delivery hand-off, removal, extension, expiry and loss of eligibility;
``delivery`` holds the connectors that grant and revoke resource roles.
"""

from dataclasses import dataclass, field


@dataclass
class BulkResult:
    """What a bulk operation did: the objects it changed and, per refused item, why."""

    done: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # [(item, message)]

    @property
    def ok(self):
        return not self.refused
