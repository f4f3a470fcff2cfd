"""Plain-words descriptions of policies and packages, for people who request access.

They read only prefetched relations (see ``PACKAGE_PREFETCH``), so a list of packages
costs the same number of queries whatever its length.
"""

from django.db.models import Prefetch
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from entitlements.models import (
    ApprovalStage,
    AssignmentPolicy,
    ExpirationType,
    Question,
    ResourceRoleScope,
    StageApproverSet,
    SubjectType,
)

PRIMARY_APPROVER_PURPOSES = (
    StageApproverSet.Purpose.PRIMARY,
    StageApproverSet.Purpose.FALLBACK_PRIMARY,
)

STAGE_PREFETCH = Prefetch(
    "approval_stages",
    queryset=ApprovalStage.objects.order_by("sequence").prefetch_related(
        Prefetch(
            "approver_sets",
            queryset=StageApproverSet.objects.filter(
                purpose=StageApproverSet.Purpose.PRIMARY
            ).select_related("user", "group", "connected_organization"),
        )
    ),
)

PACKAGE_PREFETCH = (
    Prefetch(
        "resource_role_scopes",
        queryset=ResourceRoleScope.objects.select_related("role__resource").order_by(
            "role__resource__display_name", "role__display_name"
        ),
    ),
    Prefetch(
        "assignment_policies",
        queryset=AssignmentPolicy.objects.order_by("display_name").prefetch_related(STAGE_PREFETCH),
    ),
)

QUESTION_PREFETCH = Prefetch(
    "questions",
    queryset=Question.objects.order_by("sequence").prefetch_related("choices", "localizations"),
)


def grants(package):
    """'Member of Sales team', ... for a package with ``resource_role_scopes`` prefetched."""
    return [
        _("%(role)s of %(resource)s")
        % {"role": scope.role.display_name, "resource": scope.role.resource.display_name}
        for scope in package.resource_role_scopes.all()
    ]


def approver_names(stage):
    names = []
    for approver in stage.approver_sets.all():
        if approver.subject_type == SubjectType.REQUESTOR_MANAGER:
            names.append(
                _("your second-level manager") if approver.manager_level == 2 else _("your manager")
            )
        else:
            names.append(str(approver))
    return names


def _join(items):
    if len(items) <= 1:
        return "".join(items)
    return _("%(first)s or %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _duration(delta):
    days = delta.days
    if days and not delta.seconds:
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    hours = int(delta.total_seconds() // 3600)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


def approval_sentence(policy):
    """Who approves under a policy, in one sentence."""
    stages = list(policy.approval_stages.all()) if policy.is_approval_required_for_add else []
    if not stages:
        return _("No approval needed.")
    if len(stages) == 1:
        stage = stages[0]
        return _("Approved by %(who)s, who has %(days)s to decide.") % {
            "who": _join(approver_names(stage) or [_("the designated approvers")]),
            "days": _duration(stage.duration_before_automatic_denial),
        }
    parts = [
        _("stage %(n)d by %(who)s")
        % {"n": stage.sequence, "who": _join(approver_names(stage) or [_("the approvers")])}
        for stage in stages
    ]
    return _("Approval in %(n)d stages: %(stages)s.") % {
        "n": len(parts),
        "stages": "; ".join(parts),
    }


def duration_sentence(policy):
    """How long access lasts under a policy."""
    if policy.expiration_type == ExpirationType.AFTER_DURATION and policy.expiration_duration:
        return _("Access lasts %(d)s.") % {"d": _duration(policy.expiration_duration)}
    if policy.expiration_type == ExpirationType.AFTER_DATE_TIME and policy.expiration_end_datetime:
        return _("Access ends on %(date)s.") % {
            "date": date_format(policy.expiration_end_datetime, "DATE_FORMAT")
        }
    return _("Access does not expire.")


def policy_sentences(policy):
    sentences = [approval_sentence(policy), duration_sentence(policy)]
    if policy.allow_custom_assignment_schedule:
        sentences.append(_("You can ask for a specific period."))
    return sentences


def policy_summary(policy):
    return " ".join(policy_sentences(policy))
