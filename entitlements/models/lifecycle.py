"""Requests, assignments and the resource roles delivered for them."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User

from ..querysets import RestrictedQuerySet
from .catalogs import AccessPackage, ResourceRole
from .policies import AssignmentPolicy, Question

# --------------------------------------------------------------------------------------
# Requests and assignments
# --------------------------------------------------------------------------------------


class RequestType(models.TextChoices):
    USER_ADD = "userAdd", _("Request")
    USER_UPDATE = "userUpdate", _("Update")
    USER_EXTEND = "userExtend", _("Extension")
    USER_REMOVE = "userRemove", _("Removal by the user")
    ADMIN_ADD = "adminAdd", _("Direct assignment")
    ADMIN_UPDATE = "adminUpdate", _("Update by an administrator")
    ADMIN_REMOVE = "adminRemove", _("Removal by an administrator")
    SYSTEM_ADD = "systemAdd", _("Automatic assignment")
    SYSTEM_REMOVE = "systemRemove", _("Automatic removal")
    ON_BEHALF_ADD = "onBehalfAdd", _("Request on behalf")


ADD_REQUEST_TYPES = [
    RequestType.USER_ADD,
    RequestType.ADMIN_ADD,
    RequestType.SYSTEM_ADD,
    RequestType.ON_BEHALF_ADD,
]
UPDATE_REQUEST_TYPES = [RequestType.USER_UPDATE, RequestType.USER_EXTEND, RequestType.ADMIN_UPDATE]
REMOVE_REQUEST_TYPES = [
    RequestType.USER_REMOVE,
    RequestType.ADMIN_REMOVE,
    RequestType.SYSTEM_REMOVE,
]


class RequestState(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    PENDING_APPROVAL = "pendingApproval", _("Pending approval")
    SCHEDULED = "scheduled", _("Scheduled")
    DELIVERING = "delivering", _("Delivering")
    DELIVERED = "delivered", _("Delivered")
    PARTIALLY_DELIVERED = "partiallyDelivered", _("Partially delivered")
    DELIVERY_FAILED = "deliveryFailed", _("Delivery failed")
    DENIED = "denied", _("Denied")
    CANCELED = "canceled", _("Canceled")


# A request in one of these holds its place: no second one for the same user and package.
OPEN_REQUEST_STATES = [
    RequestState.SUBMITTED,
    RequestState.PENDING_APPROVAL,
    RequestState.SCHEDULED,
    RequestState.DELIVERING,
]
FINAL_REQUEST_STATES = [
    RequestState.DELIVERED,
    RequestState.PARTIALLY_DELIVERED,
    RequestState.DELIVERY_FAILED,
    RequestState.DENIED,
    RequestState.CANCELED,
]
# The order a request moves in; it never moves to an earlier rank.
REQUEST_STATE_RANK = {
    RequestState.SUBMITTED: 0,
    RequestState.PENDING_APPROVAL: 1,
    RequestState.SCHEDULED: 2,
    RequestState.DELIVERING: 3,
    RequestState.DELIVERED: 4,
    RequestState.PARTIALLY_DELIVERED: 4,
    RequestState.DELIVERY_FAILED: 4,
    RequestState.DENIED: 4,
    RequestState.CANCELED: 4,
}


class AssignmentRequest(BaseModel):
    """A request to add, extend or remove a user's package (accessPackageAssignmentRequest)."""

    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.PROTECT, related_name="assignment_requests"
    )
    assignment_policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.PROTECT, related_name="assignment_requests"
    )
    requestor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="requests_made",
        help_text=_("Who asked; empty for the system."),
    )
    target = models.ForeignKey(User, on_delete=models.PROTECT, related_name="assignment_requests")
    assignment = models.ForeignKey(
        "Assignment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="requests",
    )
    request_type = models.CharField(_("type"), max_length=16, choices=RequestType)
    state = models.CharField(
        _("state"), max_length=24, choices=RequestState, default=RequestState.SUBMITTED
    )
    status = models.CharField(
        _("status"),
        max_length=64,
        blank=True,
        help_text=_("Detail of the state, e.g. Accepted, PendingApproval, Expired."),
    )
    justification = models.TextField(_("business justification"), blank=True)
    schedule_start = models.DateTimeField(_("starts"), null=True, blank=True)
    schedule_end = models.DateTimeField(_("ends"), null=True, blank=True)
    completed_datetime = models.DateTimeField(_("completed"), null=True, blank=True)
    notify = models.BooleanField(
        _("tell the person by email"),
        default=True,
        help_text=_(
            "Off for a direct assignment its administrator chose to make silently: the person "
            "gets no email when the access arrives. On, the policy's email setting decides."
        ),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = _("assignment request")
        constraints = [
            models.UniqueConstraint(
                fields=["target", "access_package"],
                condition=Q(state__in=OPEN_REQUEST_STATES, request_type__in=ADD_REQUEST_TYPES),
                name="one_open_request_per_target_package",
                violation_error_message=_("There is already an open request for this package."),
            ),
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(state__in=OPEN_REQUEST_STATES, request_type__in=UPDATE_REQUEST_TYPES),
                name="one_open_update_request_per_assignment",
                violation_error_message=_("This access already has an open extension request."),
            ),
        ]
        indexes = [
            # request history in My Access: my requests, newest first
            models.Index(fields=["target", "-created"], name="request_target_created_idx"),
            models.Index(fields=["requestor", "-created"], name="request_requestor_created_idx"),
            # the reconciler and the scheduler: requests in a state, oldest first
            models.Index(fields=["state", "modified"], name="request_state_modified_idx"),
            models.Index(
                fields=["schedule_start"],
                condition=Q(state="scheduled"),
                name="request_scheduled_start_idx",
            ),
            # the admin and API lists: newest first, id breaking ties (a page without a sort)
            models.Index(fields=["-created", "-id"], name="request_created_order_idx"),
        ]

    def __str__(self):
        return f"{self.get_request_type_display()} of {self.access_package} for {self.target}"

    @property
    def is_open(self):
        return self.state in OPEN_REQUEST_STATES


class AssignmentState(models.TextChoices):
    DELIVERING = "delivering", _("Delivering")
    DELIVERED = "delivered", _("Delivered")
    PARTIALLY_DELIVERED = "partiallyDelivered", _("Partially delivered")
    DELIVERY_FAILED = "deliveryFailed", _("Delivery failed")
    EXPIRED = "expired", _("Expired")


OPEN_ASSIGNMENT_STATES = [
    AssignmentState.DELIVERING,
    AssignmentState.DELIVERED,
    AssignmentState.PARTIALLY_DELIVERED,
    AssignmentState.DELIVERY_FAILED,
]


class Assignment(BaseModel):
    """One user holding one access package under one policy (accessPackageAssignment)."""

    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.PROTECT, related_name="assignments"
    )
    assignment_policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.PROTECT, related_name="assignments"
    )
    target = models.ForeignKey(User, on_delete=models.PROTECT, related_name="assignments")
    state = models.CharField(
        _("state"), max_length=24, choices=AssignmentState, default=AssignmentState.DELIVERING
    )
    status = models.CharField(_("status"), max_length=64, blank=True)
    schedule_start = models.DateTimeField(_("starts"), default=timezone.now)
    schedule_end = models.DateTimeField(_("ends"), null=True, blank=True)
    expired_datetime = models.DateTimeField(_("ended"), null=True, blank=True)
    eligibility_lost_datetime = models.DateTimeField(
        _("left the policy's scope"), null=True, blank=True
    )
    expiring_notice_sent = models.JSONField(
        _("expiry notices sent"),
        default=list,
        blank=True,
        help_text=_("Which 'access ends soon' emails went out, e.g. [14, 1]."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = _("assignment")
        constraints = [
            models.UniqueConstraint(
                fields=["target", "access_package"],
                condition=Q(state__in=OPEN_ASSIGNMENT_STATES),
                name="one_open_assignment_per_target_package",
                violation_error_message=_("This user already has this access package."),
            )
        ]
        indexes = [
            # expiry: open assignments whose end has come
            models.Index(
                fields=["schedule_end"],
                condition=Q(state__in=OPEN_ASSIGNMENT_STATES),
                name="assignment_open_end_idx",
            ),
            # My Access: my active and expired assignments
            models.Index(fields=["target", "state"], name="assignment_target_state_idx"),
            models.Index(fields=["access_package", "state"], name="assignment_package_state_idx"),
            # the admin and API lists: newest first, id breaking ties (a page without a sort)
            models.Index(fields=["-created", "-id"], name="assignment_created_order_idx"),
        ]

    def __str__(self):
        return f"{self.target} — {self.access_package}"

    @property
    def is_open(self):
        return self.state in OPEN_ASSIGNMENT_STATES


class GrantState(models.TextChoices):
    PENDING = "pending", _("Waiting for delivery")
    DELIVERED = "delivered", _("Delivered")
    DELIVERY_FAILED = "deliveryFailed", _("Delivery failed")
    PENDING_REMOVAL = "pendingRemoval", _("Waiting for removal")
    REMOVED = "removed", _("Removed")
    REMOVAL_FAILED = "removalFailed", _("Removal failed")


# Grants whose user holds (or is about to hold) the role because of this assignment.
HOLDING_GRANT_STATES = [GrantState.PENDING, GrantState.DELIVERED, GrantState.DELIVERY_FAILED]


class AssignmentResourceRole(BaseModel):
    """One resource role delivered for one assignment (accessPackageAssignmentResourceRole)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="grants")
    resource_role = models.ForeignKey(ResourceRole, on_delete=models.PROTECT, related_name="grants")
    # Denormalised from the assignment so "who else needs this role" is one indexed lookup.
    target = models.ForeignKey(User, on_delete=models.PROTECT, related_name="grants")
    state = models.CharField(
        _("state"), max_length=16, choices=GrantState, default=GrantState.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)
    delivered_datetime = models.DateTimeField(_("delivered"), null=True, blank=True)
    removed_datetime = models.DateTimeField(_("removed"), null=True, blank=True)
    # A worker's claim while it calls the connector with no transaction open: the grant is
    # left alone until the lease runs out, after which the reconciler hands it out again.
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True)
    lease_expires = models.DateTimeField(_("claim expires"), null=True, blank=True)
    refused = models.BooleanField(
        _("refused"),
        default=False,
        help_text=_("The system definitely refused the last attempt; not retried by itself."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivered resource role")
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "resource_role"], name="one_grant_per_assignment_role"
            )
        ]
        indexes = [
            # revoke: does another open assignment still need this role for this user?
            models.Index(fields=["target", "resource_role", "state"], name="grant_target_role_idx"),
            # the reconciler: grants waiting for delivery or removal
            models.Index(fields=["state", "modified"], name="grant_state_modified_idx"),
            # the reconciler: claims whose worker died
            models.Index(
                fields=["lease_expires"],
                condition=Q(lease_expires__isnull=False),
                name="grant_lease_expires_idx",
            ),
        ]

    def __str__(self):
        return f"{self.resource_role} for {self.target.display_name}: {self.get_state_display()}"


class RequestAnswer(BaseModel):
    """The requestor's answer to one question (accessPackageAnswerString)."""

    request = models.ForeignKey(AssignmentRequest, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    value = models.TextField(_("value"))
    display_value = models.TextField(_("answer"))

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("answer")
        constraints = [
            models.UniqueConstraint(fields=["request", "question"], name="one_answer_per_question")
        ]

    def __str__(self):
        return f"{self.question.text}: {self.display_value}"
