"""Every write that changes the state of a request or an assignment.

``requests`` holds submission, cancellation and the start of scheduled requests;
``fulfilment`` turns an approved request into an assignment (or an extension of one);
``delivery`` claims grants, calls the connectors (``entitlements.connectors``) with no
transaction open, records the outcome, and holds revocation and reprocess;
``ending`` holds removal and expiry, through the one set-based end path ``assignments_end``;
``eligibility`` ends the assignments of users who left a policy's scope;
``reconciliation`` finds again the work the broker or a dead worker lost;
``packages`` holds the changes to what a package grants, which reach its holders;
``common`` the locks, audit rows and enqueueing these share.
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


def bulk_apply(items, action):
    """Run ``action(item)`` for each item in turn; a refused item (any DomainError) is listed
    with its message and the others go on. Each call keeps its own transaction."""
    from ..errors import DomainError

    result = BulkResult()
    for item in items:
        try:
            result.done.append(action(item))
        except DomainError as exc:
            result.refused.append((item, exc.message))
    return result
