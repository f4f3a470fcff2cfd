"""The approval step as entitlements sees it: an interface that the approvals app fills in.

Entitlements sits below approvals in the layers, so it never imports approvals. A submitted
request still has to open its first approval stage, and a request that ends early has to close
the stages still waiting for a decision; both happen inside the caller's transaction, so a
signal sent on commit would be too late. The approvals app registers its implementation when
Django starts (``ApprovalsConfig.ready``).
"""

from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class ApprovalSteps(Protocol):
    def open_first_stage(self, *, request, now) -> None:
        """Open stage 1 of ``request`` (locked by the caller) and resolve its approvers."""

    def close_open_stages(self, *, requests, now) -> None:
        """Cancel the stages of ``requests`` (a queryset or list) still waiting for a decision."""


_steps: ApprovalSteps | None = None


def register_approval_steps(steps: ApprovalSteps) -> None:
    global _steps
    _steps = steps


def approval_steps() -> ApprovalSteps:
    if _steps is None:
        raise ImproperlyConfigured("No approval steps registered: is 'approvals' installed?")
    return _steps
