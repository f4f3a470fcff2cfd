"""The email outbox: one row per email to one person, kept until it is sent."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User
from entitlements.models import Assignment, AssignmentRequest


class NotificationKind(models.TextChoices):
    """Every email the product sends; the subjects follow Entra's.

    One list for the database's choices; the app that sends a kind registers how it is
    rendered (``notifications.kinds.register``).
    """

    APPROVAL_REQUIRED = "approvalRequired", _("Approve or deny request")
    APPROVAL_REMINDER = "approvalReminder", _("Reminder to approve or deny")
    APPROVAL_FORWARDED = "approvalForwarded", _("Forwarded request")
    APPROVAL_EXPIRED = "approvalExpired", _("Request expired (approver)")
    APPROVAL_DECIDED_BY_OTHER = "approvalDecidedByOther", _("Decided by another approver")
    STAGE_APPROVED = "stageApproved", _("Request approved at a stage")
    REQUEST_DENIED = "requestDenied", _("Request denied")
    REQUEST_EXPIRED = "requestExpired", _("Request expired")
    APPROVAL_REVOKED = "approvalRevoked", _("Approval revoked")
    ACCESS_DELIVERED = "accessDelivered", _("Access delivered")
    ACCESS_EXPIRING = "accessExpiring", _("Access ends soon")
    ACCESS_ENDED = "accessEnded", _("Access ended")
    REVIEW_STARTED = "reviewStarted", _("Access review started")
    REVIEW_REMINDER = "reviewReminder", _("Access review reminder")
    REVIEW_ENDING = "reviewEnding", _("Access review ends soon")


class Notification(BaseModel):
    """One email to one person, kept until sent so that a lost broker loses no email (outbox)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind)
    recipient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    # One row per event and person; a row is sent at least once, always with the same
    # Message-ID, so a mail system can drop the copy a crashed worker sends again.
    dedupe_key = models.CharField(_("key"), max_length=200, unique=True)
    request = models.ForeignKey(
        AssignmentRequest,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    assignment = models.ForeignKey(
        Assignment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # The row of a higher app this email is about (an approval stage); the app that
    # registered the kind knows which model, so the outbox needs no key to its tables.
    about_id = models.UUIDField(_("about"), null=True, blank=True)
    context = models.JSONField(_("details"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State, default=State.PENDING)
    # While ``sending``: the worker that claimed the row owns it until then; after it, the
    # reconciler may claim the row again (the worker died between sending and recording).
    lease_expires = models.DateTimeField(_("claimed until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)
    subject = models.CharField(_("subject"), max_length=400, blank=True)
    sent_datetime = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("notification")
        indexes = [
            # the reconciler: notifications still waiting, oldest first
            models.Index(
                fields=["created"], condition=Q(state="pending"), name="notification_pending_idx"
            ),
            # the reconciler: claims whose lease ran out
            models.Index(
                fields=["lease_expires"],
                condition=Q(state="sending"),
                name="notification_sending_lease_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient.email}"

    @property
    def message_id(self):
        """The Message-ID of this email, the same on every attempt: ``<id@site domain>``."""
        domain = urlsplit(settings.SITE_URL).hostname or "localhost"
        return f"<notification.{self.pk}@{domain}>"
