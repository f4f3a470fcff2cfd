"""Approval at run time: each request's stages, their resolved approvers and their decision."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User
from entitlements.models import ApprovalStage, AssignmentRequest, Channel


class StageStatus(models.TextChoices):
    NOT_STARTED = "notStarted", _("Not started")
    IN_PROGRESS = "inProgress", _("Waiting for a decision")
    ESCALATED = "escalated", _("Forwarded to escalation approvers")
    COMPLETED = "completed", _("Decided")
    EXPIRED = "expired", _("No decision in time")
    CANCELED = "canceled", _("Canceled")


OPEN_STAGE_STATUSES = [StageStatus.IN_PROGRESS, StageStatus.ESCALATED]


class ReviewResult(models.TextChoices):
    NOT_REVIEWED = "NotReviewed", _("Not reviewed")
    APPROVED = "Approved", _("Approved")
    DENIED = "Denied", _("Denied")


class RequestApprovalStage(BaseModel):
    """One approval stage of one request: when it opened, its deadline, and the one decision."""

    request = models.ForeignKey(
        AssignmentRequest, on_delete=models.CASCADE, related_name="approval_stages"
    )
    policy_stage = models.ForeignKey(
        ApprovalStage, on_delete=models.PROTECT, related_name="request_stages"
    )
    sequence = models.PositiveSmallIntegerField(_("stage"))
    status = models.CharField(
        _("status"), max_length=16, choices=StageStatus, default=StageStatus.NOT_STARTED
    )
    review_result = models.CharField(
        _("decision"), max_length=16, choices=ReviewResult, default=ReviewResult.NOT_REVIEWED
    )
    reviewed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="stage_decisions"
    )
    reviewed_datetime = models.DateTimeField(_("decided"), null=True, blank=True)
    justification = models.TextField(_("approver justification"), blank=True)
    channel = models.CharField(_("decided through"), max_length=16, choices=Channel, blank=True)
    opened_datetime = models.DateTimeField(_("opened"), null=True, blank=True)
    escalation_datetime = models.DateTimeField(_("escalates at"), null=True, blank=True)
    escalated_datetime = models.DateTimeField(_("escalated"), null=True, blank=True)
    deadline = models.DateTimeField(_("decide by"), null=True, blank=True)
    reminder_sent_datetime = models.DateTimeField(_("reminder sent"), null=True, blank=True)

    class Meta:
        ordering = ["request", "sequence"]
        verbose_name = _("request approval stage")
        constraints = [
            models.UniqueConstraint(
                fields=["request", "sequence"], name="one_approval_stage_per_request_sequence"
            ),
            models.CheckConstraint(
                name="a_decision_names_its_approver",
                condition=Q(review_result="NotReviewed") | Q(reviewed_by__isnull=False),
            ),
        ]
        indexes = [
            # the scheduler: open stages whose deadline or escalation time has come
            models.Index(
                fields=["deadline"],
                condition=Q(status__in=["inProgress", "escalated"]),
                name="stage_open_deadline_idx",
            ),
            models.Index(
                fields=["escalation_datetime"],
                condition=Q(status="inProgress"),
                name="stage_open_escalation_idx",
            ),
        ]

    def __str__(self):
        return f"Stage {self.sequence} of {self.request}"

    @property
    def is_open(self):
        return self.status in OPEN_STAGE_STATUSES


class StageApprover(BaseModel):
    """One person resolved as an approver of one request stage."""

    class Kind(models.TextChoices):
        PRIMARY = "primary", _("Approver")
        FALLBACK_PRIMARY = "fallbackPrimary", _("Fallback approver")
        ESCALATION = "escalation", _("Escalation approver")
        FALLBACK_ESCALATION = "fallbackEscalation", _("Fallback escalation approver")

    stage = models.ForeignKey(
        RequestApprovalStage, on_delete=models.CASCADE, related_name="approvers"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="approval_assignments")
    kind = models.CharField(_("as"), max_length=24, choices=Kind)
    notified_datetime = models.DateTimeField(_("notified"), null=True, blank=True)

    class Meta:
        verbose_name = _("stage approver")
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "user"], name="one_approver_row_per_stage_user"
            )
        ]
        indexes = [
            # My Access approvals tab: the stages waiting for me
            models.Index(fields=["user", "stage"], name="stageapprover_user_idx"),
        ]

    def __str__(self):
        return f"{self.user.display_name} ({self.get_kind_display()}) for {self.stage}"


class NotificationKind(models.TextChoices):
    """Every email the product sends; the subjects follow Entra's."""

    APPROVAL_REQUIRED = "approvalRequired", _("Approve or deny request")
    APPROVAL_REMINDER = "approvalReminder", _("Reminder to approve or deny")
    APPROVAL_FORWARDED = "approvalForwarded", _("Forwarded request")
    APPROVAL_EXPIRED = "approvalExpired", _("Request expired (approver)")
    APPROVAL_DECIDED_BY_OTHER = "approvalDecidedByOther", _("Decided by another approver")
    STAGE_APPROVED = "stageApproved", _("Request approved at a stage")
    REQUEST_DENIED = "requestDenied", _("Request denied")
    REQUEST_EXPIRED = "requestExpired", _("Request expired")
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
    stage = models.ForeignKey(
        RequestApprovalStage,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    assignment = models.ForeignKey(
        "entitlements.Assignment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
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
