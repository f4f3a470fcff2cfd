"""Access reviews of assignments: instances created from a policy's review settings.

Names follow Microsoft Graph: a ``ReviewInstance`` is an accessReviewInstance (one run of a
policy's recurring review), a ``ReviewItem`` an accessReviewInstanceDecisionItem (one
assignment to approve or deny) and ``ReviewItemReviewer`` the people resolved to decide it.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User
from entitlements.models import AccessPackage, Assignment, AssignmentPolicy
from entitlements.querysets import RestrictedQuerySet


class ReviewStatus(models.TextChoices):
    """Where an instance is (a subset of Graph's accessReviewInstance status values)."""

    IN_PROGRESS = "InProgress", _("In progress")
    APPLYING = "Applying", _("Applying results")
    COMPLETED = "Completed", _("Completed, results not applied")
    APPLIED = "Applied", _("Completed, results applied")


class Decision(models.TextChoices):
    """A reviewer's decision on one item (Graph decision values)."""

    NOT_REVIEWED = "NotReviewed", _("Not reviewed")
    APPROVE = "Approve", _("Approve")
    DENY = "Deny", _("Deny")
    DONT_KNOW = "DontKnow", _("Don't know")


REVIEWER_DECISIONS = [Decision.APPROVE, Decision.DENY, Decision.DONT_KNOW]


class Recommendation(models.TextChoices):
    """The decision helper's advice, from the user's last sign-in (Graph recommendation)."""

    APPROVE = "Approve", _("Approve")
    DENY = "Deny", _("Deny")


class ApplyResult(models.TextChoices):
    """What applying the review did to the item's assignment."""

    NEW = "New", _("Not applied")
    REMOVED = "Removed", _("Access removed")
    KEPT = "Kept", _("Access kept")
    ALREADY_ENDED = "AlreadyEnded", _("Access had already ended")


class ReviewInstance(BaseModel):
    """One run of a policy's recurring access review, from its start to its end."""

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="review_instances"
    )
    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.CASCADE, related_name="review_instances"
    )
    start = models.DateTimeField(_("starts"))
    end = models.DateTimeField(_("ends"))
    status = models.CharField(
        _("status"), max_length=16, choices=ReviewStatus, default=ReviewStatus.IN_PROGRESS
    )
    stopped_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stopped_datetime = models.DateTimeField(_("stopped"), null=True, blank=True)
    applied_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who had the results applied; empty when the review ended on schedule."),
    )
    applied_datetime = models.DateTimeField(_("results applied"), null=True, blank=True)
    started_notice_datetime = models.DateTimeField(_("start email sent"), null=True, blank=True)
    midpoint_reminder_datetime = models.DateTimeField(
        _("midpoint reminder sent"), null=True, blank=True
    )
    ending_reminder_datetime = models.DateTimeField(_("last reminder sent"), null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-start"]
        verbose_name = _("access review")
        verbose_name_plural = _("access reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "start"], name="one_review_instance_per_policy_start"
            ),
            models.CheckConstraint(
                name="review_instance_ends_after_start", condition=Q(end__gt=models.F("start"))
            ),
        ]
        indexes = [
            # reviews_complete_due and reviews_send_reminders: running instances by end
            models.Index(
                fields=["end"],
                condition=Q(status__in=["InProgress", "Applying"]),
                name="review_instance_open_end_idx",
            ),
        ]

    def __str__(self):
        return f"{self.access_package.display_name}: review of {self.start:%Y-%m-%d}"

    @property
    def is_open(self):
        return self.status == ReviewStatus.IN_PROGRESS

    @property
    def midpoint(self):
        return self.start + (self.end - self.start) / 2


class ReviewItem(BaseModel):
    """One assignment under review in one instance, with its decision and applied result."""

    instance = models.ForeignKey(ReviewInstance, on_delete=models.CASCADE, related_name="items")
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="review_items"
    )
    target = models.ForeignKey(User, on_delete=models.CASCADE, related_name="review_items")
    decision = models.CharField(
        _("decision"), max_length=16, choices=Decision, default=Decision.NOT_REVIEWED
    )
    justification = models.TextField(_("reviewer justification"), blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="review_decisions"
    )
    decided_datetime = models.DateTimeField(_("decided"), null=True, blank=True)
    recommendation = models.CharField(
        _("recommendation"), max_length=16, choices=Recommendation, blank=True
    )
    last_sign_in = models.DateTimeField(
        _("last sign-in"),
        null=True,
        blank=True,
        help_text=_("The user's last sign-in when the review started; the recommendation's basis."),
    )
    apply_result = models.CharField(
        _("result"), max_length=16, choices=ApplyResult, default=ApplyResult.NEW
    )
    applied_datetime = models.DateTimeField(_("applied"), null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["instance_id", "id"]
        verbose_name = _("access review item")
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "assignment"], name="one_review_item_per_instance_assignment"
            ),
            models.CheckConstraint(
                name="a_review_decision_names_its_reviewer",
                condition=Q(decision="NotReviewed") | Q(decided_by__isnull=False),
            ),
        ]
        indexes = [
            # applying: the items of an instance not applied yet, in id order (keyset batches)
            models.Index(fields=["instance", "apply_result", "id"], name="review_item_apply_idx"),
            # progress and "my undecided items": items of an instance by decision
            models.Index(fields=["instance", "decision"], name="review_item_decision_idx"),
            # a person's review history
            models.Index(fields=["target", "instance"], name="review_item_target_idx"),
            # the admin's item list in its default order: read in order, stop at a page
            models.Index(fields=["instance", "id"], name="review_item_order_idx"),
        ]

    def __str__(self):
        return f"{self.target.display_name} — {self.instance}"

    @property
    def is_decided(self):
        return self.decision != Decision.NOT_REVIEWED


class ReviewItemReviewer(BaseModel):
    """A person resolved as a reviewer: of one item, or (item empty) of every item of an instance.

    Specific users and groups review the whole instance, so they take one row per instance,
    not one per item; the user themselves (self-review) and their manager take one per item.
    """

    class Kind(models.TextChoices):
        PRIMARY = "primary", _("Reviewer")
        SELF = "self", _("The user themselves")
        MANAGER = "manager", _("The user's manager")
        FALLBACK = "fallback", _("Fallback reviewer")

    instance = models.ForeignKey(ReviewInstance, on_delete=models.CASCADE, related_name="reviewers")
    item = models.ForeignKey(
        ReviewItem, null=True, blank=True, on_delete=models.CASCADE, related_name="reviewers"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="review_assignments")
    kind = models.CharField(_("as"), max_length=16, choices=Kind)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("access reviewer")
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "user"],
                condition=Q(item__isnull=True),
                name="one_instance_reviewer_per_user",
            ),
            models.UniqueConstraint(
                fields=["item", "user"],
                condition=Q(item__isnull=False),
                name="one_item_reviewer_per_user",
            ),
        ]
        indexes = [
            # My Access: the instances and items waiting for me
            models.Index(fields=["user", "instance"], name="review_reviewer_user_idx"),
        ]

    def __str__(self):
        what = self.item or self.instance
        return f"{self.user.display_name} ({self.get_kind_display()}) for {what}"
