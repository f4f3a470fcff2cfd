"""Approval at run time: each request's stages, their resolved approvers and their decision."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User
from entitlements.models import ApprovalStage, AssignmentRequest, Channel, QuorumMode
from entitlements.querysets import RestrictedQuerySet


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
    # The quorum the policy stage asked for when this stage opened, so an edit of the policy
    # does not change what an open stage needs ("" for a stage opened before it was kept:
    # its policy stage's is read).
    quorum_mode = models.CharField(
        _("approvals needed"), max_length=16, choices=QuorumMode, blank=True
    )
    quorum_count = models.PositiveSmallIntegerField(_("number of approvals"), null=True, blank=True)
    quorum_entries = models.JSONField(_("approver entries needed"), default=list, blank=True)

    objects = RestrictedQuerySet.as_manager()

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
    # The policy stage's primary approver entries (StageApproverSet ids, as strings) this
    # person was resolved from; empty for fallback and escalation approvers, who stand in
    # for every entry of a "one from each" quorum.
    approver_set_ids = models.JSONField(_("approver entries"), default=list, blank=True)
    # This person's own decision: in a quorum stage each approver decides once.
    decision = models.CharField(
        _("decision"), max_length=16, choices=ReviewResult, default=ReviewResult.NOT_REVIEWED
    )
    decided_datetime = models.DateTimeField(_("decided"), null=True, blank=True)
    justification = models.TextField(_("approver justification"), blank=True)
    channel = models.CharField(_("decided through"), max_length=16, choices=Channel, blank=True)
    # An approval until an earlier end than the request asked for (``requested_end``, None:
    # no end); applied to the request's schedule when recorded.
    approved_end = models.DateTimeField(_("approved until"), null=True, blank=True)
    requested_end = models.DateTimeField(_("instead of"), null=True, blank=True)
    # Asked as the delegate of this approver (ApprovalDelegation); the kind stays theirs.
    on_behalf_of = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approvals_delegated",
        verbose_name=_("on behalf of"),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("stage approver")
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "user"], name="one_approver_row_per_stage_user"
            ),
            models.CheckConstraint(
                name="an_approver_decision_has_its_time",
                condition=Q(decision="NotReviewed") | Q(decided_datetime__isnull=False),
            ),
        ]
        indexes = [
            # My Access approvals tab: the stages waiting for me
            models.Index(fields=["user", "stage"], name="stageapprover_user_idx"),
        ]

    def __str__(self):
        return f"{self.user.display_name} ({self.get_kind_display()}) for {self.stage}"


class ApprovalDelegation(BaseModel):
    """One approver's delegate for a period: stages opening for them then go to the delegate too.

    Ending a delegation early moves its end to the moment it ended (or to its start, leaving
    an empty period, when it had not begun). On PostgreSQL an exclusion constraint added by
    migration 0008 (``one_delegation_at_a_time_per_approver``) refuses two overlapping
    periods of one approver; ``delegation_create`` refuses them with a message on both.
    """

    delegator = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="approval_delegations_given",
        verbose_name=_("approver"),
    )
    delegate = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="approval_delegations_received",
        verbose_name=_("delegate"),
    )
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    note = models.TextField(_("note"), blank=True)
    ended_datetime = models.DateTimeField(_("ended early"), null=True, blank=True)

    class Meta:
        ordering = ["-start"]
        verbose_name = _("approval delegation")
        constraints = [
            models.CheckConstraint(
                name="a_delegation_does_not_end_before_it_starts", condition=Q(end__gte=F("start"))
            ),
            models.CheckConstraint(
                name="a_delegation_names_someone_else", condition=~Q(delegate=F("delegator"))
            ),
        ]
        indexes = [
            # stage_open: the delegations in force for the approvers of a stage, now
            models.Index(fields=["delegator", "end"], name="delegation_delegator_end_idx"),
        ]

    def __str__(self):
        return f"{self.delegator} → {self.delegate}"

    def in_force(self, now):
        return self.start <= now < self.end


class ApprovalRevocation(BaseModel):
    """An approval taken back by the approver who gave it, and what that did to the request."""

    class Outcome(models.TextChoices):
        REQUEST_ENDED = "requestEnded", _("The request was ended before delivery")
        ACCESS_REMOVED = "accessRemoved", _("The access it gave was removed")

    approval = models.OneToOneField(
        StageApprover,
        on_delete=models.CASCADE,
        related_name="revocation",
        verbose_name=_("approval"),
    )
    revoked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", verbose_name=_("revoked by")
    )
    reason = models.TextField(_("reason"))
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)

    class Meta:
        verbose_name = _("approval revocation")

    def __str__(self):
        return f"Revocation of {self.approval}"
