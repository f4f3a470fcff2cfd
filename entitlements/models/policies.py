"""Assignment policies: who may request, approval stages, questions, expiry and reviews."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, ConnectedOrganization, Group, User
from directory.rules import RuleSyntaxError, parse_rule

from ..patterns import UnsafePattern, check_pattern, fullmatch
from ..querysets import RestrictedQuerySet
from .catalogs import AccessPackage

# --------------------------------------------------------------------------------------
# Assignment policies
# --------------------------------------------------------------------------------------


class AllowedTargetScope(models.TextChoices):
    """Who may request a package under a policy (Graph allowedTargetScope)."""

    NOT_SPECIFIED = "notSpecified", _("Nobody (administrators assign directly)")
    SPECIFIC_DIRECTORY_USERS = "specificDirectoryUsers", _("Specific users and groups")
    SPECIFIC_CONNECTED_ORGANIZATION_USERS = (
        "specificConnectedOrganizationUsers",
        _("Users of specific connected organizations"),
    )
    ALL_MEMBER_USERS = "allMemberUsers", _("All members (excluding guests)")
    ALL_DIRECTORY_USERS = "allDirectoryUsers", _("All users (including guests)")
    ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS = (
        "allConfiguredConnectedOrganizationUsers",
        _("All configured connected organizations"),
    )
    ALL_EXTERNAL_USERS = "allExternalUsers", _("All external users")


class ExpirationType(models.TextChoices):
    """How an assignment made under a policy ends (Graph expirationPatternType)."""

    NO_EXPIRATION = "noExpiration", _("Never")
    AFTER_DATE_TIME = "afterDateTime", _("On a date")
    AFTER_DURATION = "afterDuration", _("After a duration")


class ReviewRecurrence(models.TextChoices):
    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SEMI_ANNUALLY = "semiAnnually", _("Semi-annually")
    ANNUALLY = "annually", _("Annually")


class ReviewExpirationBehavior(models.TextChoices):
    """What happens to access nobody reviewed (Graph expirationBehavior)."""

    KEEP_ACCESS = "keepAccess", _("Keep access")
    REMOVE_ACCESS = "removeAccess", _("Remove access")
    ACCEPT_ACCESS_RECOMMENDATION = "acceptAccessRecommendation", _("Take recommendations")


class AssignmentPolicy(BaseModel):
    """Who may request a package, who approves, how long access lasts, how it is reviewed."""

    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.CASCADE, related_name="assignment_policies"
    )
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    allowed_target_scope = models.CharField(
        _("who may request"),
        max_length=48,
        choices=AllowedTargetScope,
        default=AllowedTargetScope.ALL_MEMBER_USERS,
    )

    # Requestor settings
    enable_targets_to_self_add_access = models.BooleanField(_("users may request"), default=True)
    enable_targets_to_self_update_access = models.BooleanField(
        _("users may extend their access"), default=False
    )
    enable_targets_to_self_remove_access = models.BooleanField(
        _("users may remove their access"), default=True
    )
    allow_custom_assignment_schedule = models.BooleanField(
        _("users may request a specific period"), default=False
    )
    enable_on_behalf_requestors_to_add_access = models.BooleanField(
        _("managers may request for their direct reports"), default=False
    )
    enable_on_behalf_requestors_to_update_access = models.BooleanField(
        _("on-behalf requestors may extend"), default=False
    )
    enable_on_behalf_requestors_to_remove_access = models.BooleanField(
        _("on-behalf requestors may remove"), default=False
    )

    # Approval
    is_approval_required_for_add = models.BooleanField(_("approval required"), default=True)
    is_approval_required_for_update = models.BooleanField(
        _("approval required for extension"), default=False
    )
    is_requestor_justification_required = models.BooleanField(
        _("requestor justification required"), default=True
    )

    # Expiration
    expiration_type = models.CharField(
        _("access ends"),
        max_length=16,
        choices=ExpirationType,
        default=ExpirationType.AFTER_DURATION,
    )
    expiration_end_datetime = models.DateTimeField(_("access ends on"), null=True, blank=True)
    expiration_duration = models.DurationField(
        _("access lasts"),
        null=True,
        blank=True,
        default=timedelta(days=365),
        help_text=_("For example “30 days”, “8 hours” or “2 weeks”."),
    )

    # Automatic assignment (Graph automaticRequestSettings): the people the policy's rule
    # matches are given the package without a request, and lose it when they stop matching.
    request_access_for_allowed_targets = models.BooleanField(
        _("assign automatically"),
        default=False,
        help_text=_(
            "Give the package to everyone the rule below matches, without a request. "
            "Users cannot request under an automatic policy."
        ),
    )

    # Losing eligibility
    remove_access_when_target_leaves_allowed_targets = models.BooleanField(
        _("remove access when the user leaves the policy's scope"), default=True
    )
    grace_period_before_access_removal = models.DurationField(
        _("grace period before removal"), default=timedelta(0), blank=True
    )

    # Access reviews
    review_is_enabled = models.BooleanField(_("access reviews"), default=False)
    review_start_date = models.DateField(_("first review on"), null=True, blank=True)
    review_recurrence = models.CharField(
        _("review frequency"),
        max_length=16,
        choices=ReviewRecurrence,
        default=ReviewRecurrence.QUARTERLY,
    )
    review_duration_in_days = models.PositiveSmallIntegerField(
        _("review duration (days)"), default=14
    )
    review_is_self_review = models.BooleanField(_("users review their own access"), default=False)
    review_is_reviewer_justification_required = models.BooleanField(
        _("reviewers must justify"), default=True
    )
    review_is_recommendation_enabled = models.BooleanField(_("show decision helpers"), default=True)
    review_is_auto_apply_enabled = models.BooleanField(
        _("apply results automatically"), default=True
    )
    review_expiration_behavior = models.CharField(
        _("if reviewers don't respond"),
        max_length=32,
        choices=ReviewExpirationBehavior,
        default=ReviewExpirationBehavior.KEEP_ACCESS,
    )

    is_assignment_notification_disabled = models.BooleanField(
        _("notifications off"),
        default=False,
        help_text=_("Send no emails about requests and assignments of this policy."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["access_package__display_name", "display_name"]
        verbose_name = _("assignment policy")
        verbose_name_plural = _("assignment policies")
        constraints = [
            models.CheckConstraint(
                name="expiration_duration_is_positive",
                condition=~Q(expiration_type="afterDuration")
                | Q(expiration_duration__gt=timedelta(0)),
                violation_error_message=_("Access must last longer than zero."),
            ),
            models.CheckConstraint(
                name="review_duration_is_positive",
                condition=Q(review_duration_in_days__gte=1),
            ),
            models.UniqueConstraint(
                fields=["access_package"],
                condition=Q(request_access_for_allowed_targets=True),
                name="one_automatic_policy_per_package",
                violation_error_message=_("An access package has at most one automatic policy."),
            ),
        ]

    def __str__(self):
        return f"{self.access_package.display_name}: {self.display_name}"

    def clean(self):
        errors = {}
        if self.expiration_type == ExpirationType.AFTER_DURATION:
            if not self.expiration_duration:
                errors["expiration_duration"] = _("Give how long access lasts.")
            elif self.expiration_duration <= timedelta(0):
                errors["expiration_duration"] = _("Access must last longer than zero.")
        if self.expiration_type == ExpirationType.AFTER_DATE_TIME and not (
            self.expiration_end_datetime
        ):
            errors["expiration_end_datetime"] = _("Give the date on which access ends.")
        if self.grace_period_before_access_removal and (
            self.grace_period_before_access_removal < timedelta(0)
        ):
            errors["grace_period_before_access_removal"] = _("The grace period cannot be negative.")
        if self.review_is_enabled and not self.review_start_date:
            errors["review_start_date"] = _("Give the date of the first review.")
        if self.request_access_for_allowed_targets:
            errors.update(self._automatic_problems())
        if errors:
            raise ValidationError(errors)

    def _automatic_problems(self):
        """What an automatic policy may not have: users' requests, approval, another scope."""
        problems = {}
        if self.allowed_target_scope != AllowedTargetScope.SPECIFIC_DIRECTORY_USERS:
            problems["allowed_target_scope"] = _(
                "An automatic policy assigns the users its rule matches: choose "
                "“Specific users and groups” and give the rule."
            )
        if self.enable_targets_to_self_add_access:
            problems["enable_targets_to_self_add_access"] = _(
                "Users cannot request under an automatic policy; turn this off."
            )
        if self.enable_on_behalf_requestors_to_add_access:
            problems["enable_on_behalf_requestors_to_add_access"] = _(
                "Nobody requests under an automatic policy; turn this off."
            )
        if self.is_approval_required_for_add:
            problems["is_approval_required_for_add"] = _(
                "Automatic assignments are not approved; turn this off."
            )
        other = (
            AssignmentPolicy.objects.filter(
                access_package_id=self.access_package_id, request_access_for_allowed_targets=True
            )
            .exclude(pk=self.pk)
            .only("display_name")
            .first()
            if self.access_package_id
            else None
        )
        if other is not None:
            problems["request_access_for_allowed_targets"] = _(
                "This access package already has an automatic policy (%(name)s); a package has "
                "at most one."
            ) % {"name": other.display_name}
        return problems

    def assignment_end(self, start):
        """When an assignment starting at ``start`` ends under this policy (None: never)."""
        if self.expiration_type == ExpirationType.AFTER_DURATION and self.expiration_duration:
            return start + self.expiration_duration
        if self.expiration_type == ExpirationType.AFTER_DATE_TIME:
            return self.expiration_end_datetime
        return None

    @property
    def is_request_allowed(self):
        return (
            self.allowed_target_scope != AllowedTargetScope.NOT_SPECIFIED
            and self.enable_targets_to_self_add_access
            and not self.request_access_for_allowed_targets
        )


class SubjectType(models.TextChoices):
    """Kinds of subject set (Graph's subjectSet types)."""

    SINGLE_USER = "singleUser", _("A specific user")
    GROUP_MEMBERS = "groupMembers", _("Members of a group")
    CONNECTED_ORGANIZATION_MEMBERS = (
        "connectedOrganizationMembers",
        _("Users of a connected organization"),
    )
    REQUESTOR_MANAGER = "requestorManager", _("The requestor's manager")
    TARGET_MANAGER = "targetManager", _("The user's manager")
    INTERNAL_SPONSORS = "internalSponsors", _("Internal sponsors of the user's organization")
    EXTERNAL_SPONSORS = "externalSponsors", _("External sponsors of the user's organization")
    TARGET_USER_SPONSORS = "targetUserSponsors", _("The user's own sponsors")
    ATTRIBUTE_RULE_MEMBERS = "attributeRuleMembers", _("Users a rule over attributes matches")


# Approvers who depend on the requestor; without a fallback the stage may find nobody.
RELATIVE_SUBJECT_TYPES = {
    SubjectType.REQUESTOR_MANAGER,
    SubjectType.TARGET_MANAGER,
    SubjectType.INTERNAL_SPONSORS,
    SubjectType.EXTERNAL_SPONSORS,
    SubjectType.TARGET_USER_SPONSORS,
}


class SubjectSetBase(BaseModel):
    """Abstract: a set of people described by kind (a user, a group's members, a manager...)."""

    ALLOWED_TYPES: tuple = tuple(SubjectType.values)

    subject_type = models.CharField(_("who"), max_length=40, choices=SubjectType)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    connected_organization = models.ForeignKey(
        ConnectedOrganization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    manager_level = models.PositiveSmallIntegerField(
        _("manager level"),
        null=True,
        blank=True,
        help_text=_("1 = direct manager, 2 = their manager."),
    )

    class Meta:
        abstract = True

    def __str__(self):
        if self.subject_type == SubjectType.SINGLE_USER and self.user_id:
            return self.user.display_name
        if self.subject_type == SubjectType.GROUP_MEMBERS and self.group_id:
            return _("Members of %(group)s") % {"group": self.group.display_name}
        if self.subject_type == SubjectType.CONNECTED_ORGANIZATION_MEMBERS and (
            self.connected_organization_id
        ):
            return _("Users of %(org)s") % {"org": self.connected_organization.display_name}
        if self.subject_type in (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER) and (
            self.manager_level == 2
        ):
            return str(_("The second-level manager"))
        return str(self.get_subject_type_display())

    def clean(self):
        errors = {}
        if self.subject_type and self.subject_type not in self.ALLOWED_TYPES:
            errors["subject_type"] = _("%(kind)s cannot be used here.") % {
                "kind": self.get_subject_type_display()
            }
        if self.subject_type == SubjectType.SINGLE_USER and not self.user_id:
            errors["user"] = _("Choose the user.")
        if self.subject_type == SubjectType.GROUP_MEMBERS and not self.group_id:
            errors["group"] = _("Choose the group.")
        if self.subject_type == SubjectType.CONNECTED_ORGANIZATION_MEMBERS and not (
            self.connected_organization_id
        ):
            errors["connected_organization"] = _("Choose the connected organization.")
        if self.subject_type in (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER):
            if self.manager_level is None:
                self.manager_level = 1
            if self.manager_level not in (1, 2):
                errors["manager_level"] = _("The manager level is 1 or 2.")
        if errors:
            raise ValidationError(errors)


class PolicySubjectSet(SubjectSetBase):
    """People a policy names: who may request, who may request on behalf, who reviews."""

    class Purpose(models.TextChoices):
        ALLOWED_TARGET = "allowedTarget", _("May request")
        ON_BEHALF_REQUESTOR = "onBehalfRequestor", _("May request on behalf of others")
        PRIMARY_REVIEWER = "primaryReviewer", _("Reviewer")
        FALLBACK_REVIEWER = "fallbackReviewer", _("Fallback reviewer")

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="subject_sets"
    )
    purpose = models.CharField(_("purpose"), max_length=24, choices=Purpose)
    membership_rule = models.TextField(
        _("rule"),
        blank=True,
        help_text=_(
            "Which users, by their attributes, in Entra's rule syntax: "
            'user.department -eq "Sales" -and -not (user.jobTitle -startsWith "Intern").'
        ),
    )

    ALLOWED_BY_PURPOSE = {
        Purpose.ALLOWED_TARGET: (
            SubjectType.SINGLE_USER,
            SubjectType.GROUP_MEMBERS,
            SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
            SubjectType.ATTRIBUTE_RULE_MEMBERS,
        ),
        Purpose.ON_BEHALF_REQUESTOR: (
            SubjectType.TARGET_MANAGER,
            SubjectType.SINGLE_USER,
            SubjectType.GROUP_MEMBERS,
        ),
        Purpose.PRIMARY_REVIEWER: (
            SubjectType.SINGLE_USER,
            SubjectType.GROUP_MEMBERS,
            SubjectType.TARGET_MANAGER,
        ),
        Purpose.FALLBACK_REVIEWER: (SubjectType.SINGLE_USER, SubjectType.GROUP_MEMBERS),
    }

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("policy subject set")
        indexes = [models.Index(fields=["policy", "purpose"], name="policysubjectset_purpose_idx")]

    def __str__(self):
        if self.subject_type == SubjectType.ATTRIBUTE_RULE_MEMBERS:
            return self.membership_rule
        return super().__str__()

    def clean(self):
        self.ALLOWED_TYPES = tuple(self.ALLOWED_BY_PURPOSE.get(self.purpose, SubjectType.values))
        super().clean()
        if self.subject_type == SubjectType.ATTRIBUTE_RULE_MEMBERS:
            self.membership_rule = self.membership_rule.strip()
            try:
                parse_rule(self.membership_rule)
            except RuleSyntaxError as exc:
                raise ValidationError({"membership_rule": exc.pointed()}) from None
            policy = self._policy_if_set()
            if policy is not None and not policy.request_access_for_allowed_targets:
                # Requests are checked against scopes in SQL for every policy at once, where
                # a rule cannot be; Entra has rules in automatic policies only, too.
                raise ValidationError(
                    {
                        "subject_type": _(
                            "A rule chooses users only in an automatic policy: turn on "
                            "“assign automatically”, or name users or groups."
                        )
                    }
                )
        elif self.membership_rule:
            raise ValidationError(
                {
                    "membership_rule": _("Only “%(kind)s” has a rule.")
                    % {"kind": SubjectType.ATTRIBUTE_RULE_MEMBERS.label}
                }
            )

    def _policy_if_set(self):
        try:
            return self.policy
        except AssignmentPolicy.DoesNotExist:
            return None

    @property
    def parsed_rule(self):
        """The rule of an attributeRuleMembers set, parsed; None for other kinds, and for a
        rule that cannot be read (it matches nobody; clean() refuses it)."""
        if self.subject_type != SubjectType.ATTRIBUTE_RULE_MEMBERS:
            return None
        try:
            return parse_rule(self.membership_rule)
        except RuleSyntaxError:
            return None


class QuorumMode(models.TextChoices):
    """How many approvals a stage needs (beyond Graph, where any one approver decides)."""

    ANY_ONE = "anyOne", _("Any one approver")
    ONE_FROM_EACH = "oneFromEach", _("One approver from each of the listed approvers")
    SOME_OF = "someOf", _("A number of the approvers")


class ApprovalStage(BaseModel):
    """One approval stage of a policy: who decides and by when (accessPackageApprovalStage)."""

    MAX_STAGES = 3

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="approval_stages"
    )
    sequence = models.PositiveSmallIntegerField(_("stage"), default=1)
    duration_before_automatic_denial = models.DurationField(
        _("decision deadline"),
        default=timedelta(days=14),
        help_text=_("Without a decision by then the request is denied as expired."),
    )
    is_approver_justification_required = models.BooleanField(
        _("approver justification required"), default=True
    )
    is_escalation_enabled = models.BooleanField(_("escalation"), default=False)
    duration_before_escalation = models.DurationField(_("escalate after"), null=True, blank=True)
    quorum_mode = models.CharField(
        _("approvals needed"),
        max_length=16,
        choices=QuorumMode,
        default=QuorumMode.ANY_ONE,
        help_text=_(
            "“One from each”: every approver entry (a user, a group, the manager...) must "
            "approve through one of its people. “A number of”: that many different people."
        ),
    )
    quorum_count = models.PositiveSmallIntegerField(
        _("number of approvals"),
        null=True,
        blank=True,
        help_text=_("Only with “a number of the approvers”: how many different people approve."),
    )
    approvers_may_shorten = models.BooleanField(
        _("approvers may shorten the access"),
        default=False,
        help_text=_("An approver may approve until an earlier end than the request asks for."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["policy", "sequence"]
        verbose_name = _("approval stage")
        constraints = [
            models.UniqueConstraint(fields=["policy", "sequence"], name="one_stage_per_sequence"),
            models.CheckConstraint(
                name="at_most_three_approval_stages",
                condition=Q(sequence__gte=1) & Q(sequence__lte=3),
                violation_error_message=_("A policy has at most three approval stages."),
            ),
            models.CheckConstraint(
                name="a_quorum_needs_at_least_one_approval",
                condition=Q(quorum_count__isnull=True) | Q(quorum_count__gte=1),
                violation_error_message=_("A stage needs at least one approval."),
            ),
        ]

    def __str__(self):
        return _("Stage %(n)s of %(policy)s") % {"n": self.sequence, "policy": self.policy}

    def clean(self):
        errors = {}
        if self.sequence is not None and not 1 <= self.sequence <= self.MAX_STAGES:
            errors["sequence"] = _("A policy has at most three approval stages (1 to 3).")
        if self.duration_before_automatic_denial is not None and (
            self.duration_before_automatic_denial <= timedelta(0)
        ):
            errors["duration_before_automatic_denial"] = _("The deadline must be longer than zero.")
        if self.is_escalation_enabled:
            if not self.duration_before_escalation:
                errors["duration_before_escalation"] = _(
                    "Give when the request is forwarded to the escalation approvers."
                )
            elif self.duration_before_automatic_denial and (
                self.duration_before_escalation >= self.duration_before_automatic_denial
            ):
                errors["duration_before_escalation"] = _(
                    "Escalation must happen before the decision deadline."
                )
        if self.quorum_mode == QuorumMode.SOME_OF:
            if self.quorum_count is None:
                errors["quorum_count"] = _("Give how many approvals the stage needs.")
            elif self.quorum_count < 1:
                errors["quorum_count"] = _("A stage needs at least one approval.")
        elif self.quorum_count is not None:
            errors["quorum_count"] = _(
                "A number of approvals is given only with “a number of the approvers”."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def is_quorum(self):
        """Whether the stage needs more than any one approver's decision."""
        return self.quorum_mode != QuorumMode.ANY_ONE


class StageApproverSet(SubjectSetBase):
    """People who may decide one approval stage: primary, fallback or escalation approvers."""

    class Purpose(models.TextChoices):
        PRIMARY = "primaryApprover", _("Approver")
        FALLBACK_PRIMARY = "fallbackPrimaryApprover", _("Fallback approver")
        ESCALATION = "escalationApprover", _("Escalation approver")
        FALLBACK_ESCALATION = "fallbackEscalationApprover", _("Fallback escalation approver")

    ALLOWED_TYPES = (
        SubjectType.SINGLE_USER,
        SubjectType.GROUP_MEMBERS,
        SubjectType.REQUESTOR_MANAGER,
        SubjectType.INTERNAL_SPONSORS,
        SubjectType.EXTERNAL_SPONSORS,
        SubjectType.TARGET_USER_SPONSORS,
    )

    stage = models.ForeignKey(ApprovalStage, on_delete=models.CASCADE, related_name="approver_sets")
    purpose = models.CharField(_("as"), max_length=32, choices=Purpose, default=Purpose.PRIMARY)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("stage approver")
        indexes = [models.Index(fields=["stage", "purpose"], name="stageapproverset_purpose_idx")]


class Question(BaseModel):
    """A question the requestor answers when requesting (accessPackageQuestion)."""

    # Longer answers are refused: they are stored, emailed to approvers and matched.
    MAX_ANSWER_LENGTH = 4000

    class QuestionType(models.TextChoices):
        TEXT_INPUT = "textInput", _("Text")
        MULTIPLE_CHOICE = "multipleChoice", _("Multiple choice")

    policy = models.ForeignKey(AssignmentPolicy, on_delete=models.CASCADE, related_name="questions")
    sequence = models.PositiveSmallIntegerField(_("order"), default=1)
    text = models.CharField(_("question"), max_length=1024)
    question_type = models.CharField(
        _("answer format"), max_length=16, choices=QuestionType, default=QuestionType.TEXT_INPUT
    )
    is_required = models.BooleanField(_("required"), default=True)
    is_answer_editable = models.BooleanField(_("answer editable"), default=True)
    is_single_line_question = models.BooleanField(
        _("short text"), default=True, help_text=_("Off for a long text answer.")
    )
    regex_pattern = models.CharField(
        _("pattern"),
        max_length=512,
        blank=True,
        help_text=_(
            "A regular expression the whole answer must match, e.g. [A-Z]{3}-\\d{4}. "
            "Requestors never see it: describe the format in words below."
        ),
    )
    format_hint = models.CharField(
        _("expected format"),
        max_length=256,
        blank=True,
        help_text=_(
            "The format in words, shown to requestors under the question and when an answer "
            "does not match, e.g. 'three capital letters, a dash and four digits (ABC-1234)'."
        ),
    )
    is_multiple_selection_allowed = models.BooleanField(_("several choices allowed"), default=False)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["policy", "sequence"]
        verbose_name = _("question")

    def __str__(self):
        return self.text

    def clean(self):
        if not self.regex_pattern:
            return
        if self.question_type != self.QuestionType.TEXT_INPUT:
            raise ValidationError({"regex_pattern": _("Only text answers can have a pattern.")})
        try:
            check_pattern(self.regex_pattern)
        except UnsafePattern as exc:
            raise ValidationError(
                {
                    "regex_pattern": _(
                        "This pattern cannot be used: %(err)s. Patterns may not use "
                        "backreferences or lookaround, and a repeated part must not be able "
                        "to match the same text in two ways: write (a|aa)+ as a+, (a+)+ as a+."
                    )
                    % {"err": exc}
                }
            ) from None
        if not self.format_hint.strip():
            raise ValidationError(
                {
                    "format_hint": _(
                        "Describe the expected format in words: requestors see this, not the "
                        "pattern."
                    )
                }
            )

    def answer_problem(self, value):
        """Why ``value`` is not an acceptable text answer to this question, or None."""
        if len(value) > self.MAX_ANSWER_LENGTH:
            return _(
                "The answer to “%(question)s” is longer than %(max)s characters; shorten it."
            ) % {"question": self.text, "max": self.MAX_ANSWER_LENGTH}
        if not self.regex_pattern:
            return None
        try:
            matches = fullmatch(self.regex_pattern, value)
        except UnsafePattern:
            return _(
                "The answer to “%(question)s” cannot be checked because the question's "
                "pattern is not valid; tell the administrators of this access package."
            ) % {"question": self.text}
        if matches:
            return None
        if self.format_hint:
            return _("The answer to “%(question)s” is not in the expected format: %(hint)s.") % {
                "question": self.text,
                "hint": self.format_hint.rstrip("."),
            }
        return _("The answer to “%(question)s” is not in the expected format.") % {
            "question": self.text
        }

    def localized_text(self, language_code):
        for loc in self.localizations.all():
            if language_code and loc.language_code.lower() == language_code.lower()[:2]:
                return loc.text
        return self.text


class QuestionChoice(BaseModel):
    """One choice of a multiple-choice question."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    sequence = models.PositiveSmallIntegerField(_("order"), default=1)
    actual_value = models.CharField(_("value"), max_length=256)
    text = models.CharField(_("text shown"), max_length=512)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["question", "sequence"]
        verbose_name = _("choice")
        constraints = [
            models.UniqueConstraint(
                fields=["question", "actual_value"], name="one_choice_per_value"
            )
        ]

    def __str__(self):
        return self.text


class QuestionLocalization(BaseModel):
    """The text of a question in another language."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="localizations")
    language_code = models.CharField(_("language"), max_length=8)
    text = models.CharField(_("question"), max_length=1024)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("translation")
        constraints = [
            models.UniqueConstraint(
                fields=["question", "language_code"], name="one_localization_per_language"
            )
        ]

    def __str__(self):
        return f"{self.language_code}: {self.text}"
