"""Custom extensions as entitlements sees them: an interface that the extensions app fills in.

Entitlements sits below extensions in the layers, so it never imports them. A request that
reaches a stage with a custom extension must write the extension's outbox row in the same
transaction as the change that causes it (and may have to wait for the extension's answer),
so a signal sent on commit would be too late. The extensions app registers its
implementation when Django starts (``ExtensionsConfig.ready``); without it nothing waits and
nothing is called.
"""

from typing import Protocol


class ExtensionStage:
    """The stages of a request at which a policy calls custom extensions (Graph names)."""

    REQUEST_CREATED = "assignmentRequestCreated"
    REQUEST_APPROVED = "assignmentRequestApproved"
    REQUEST_GRANTED = "assignmentRequestGranted"
    REQUEST_REMOVED = "assignmentRequestRemoved"
    FOURTEEN_DAYS_BEFORE_EXPIRATION = "assignmentFourteenDaysBeforeExpiration"
    ONE_DAY_BEFORE_EXPIRATION = "assignmentOneDayBeforeExpiration"


class ExtensionSteps(Protocol):
    def hold_request(self, *, request, stage, now) -> bool:
        """Write the callouts of ``request`` (locked by the caller) at ``stage``, once; True
        when one of them makes the request wait for the extension's answer."""

    def assignments_removed(self, *, assignment_ids, now) -> None:
        """Write the callouts of the assignments that just ended (inside their transaction)."""

    def calls_on_request(self, *, policy_id):
        """A boolean expression (to annotate a query with): whether the policy ``policy_id``
        (an ``OuterRef``) calls an extension when a request is created or approved; then its
        requests must each go through ``request_submit``, never a set-based shortcut."""


class NoExtensions:
    def hold_request(self, *, request, stage, now):
        return False

    def calls_on_request(self, *, policy_id):
        from django.db.models import BooleanField, Value

        return Value(False, output_field=BooleanField())

    def assignments_removed(self, *, assignment_ids, now):
        return None


_steps: ExtensionSteps = NoExtensions()


def register_extension_steps(steps: ExtensionSteps) -> None:
    global _steps
    _steps = steps


def extension_steps() -> ExtensionSteps:
    return _steps
