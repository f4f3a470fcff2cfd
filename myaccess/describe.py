"""Plain-words descriptions of policies and packages, for people who request access.

They read only prefetched relations (see ``PACKAGE_PREFETCH``), so a list of packages
costs the same number of queries whatever its length.
"""

from django.db.models import Prefetch
from django.utils import timezone
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
from notifications.templatetags.sentences import one_full_stop

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


def approver_name(subject):
    """One approver set as the person requesting reads it: 'your manager', 'a member of X'.

    Any one person of a set decides, so a set is named by one of its people.
    """
    kind = subject.subject_type
    if kind in (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER):
        return _("your second-level manager") if subject.manager_level == 2 else _("your manager")
    if kind == SubjectType.SINGLE_USER and subject.user_id:
        return subject.user.display_name
    if kind == SubjectType.GROUP_MEMBERS and subject.group_id:
        return _("a member of %(group)s") % {"group": subject.group.display_name}
    if kind == SubjectType.CONNECTED_ORGANIZATION_MEMBERS and subject.connected_organization_id:
        return _("a user of %(org)s") % {"org": subject.connected_organization.display_name}
    if kind == SubjectType.INTERNAL_SPONSORS:
        return _("an internal sponsor of your organization")
    if kind == SubjectType.EXTERNAL_SPONSORS:
        return _("an external sponsor of your organization")
    if kind == SubjectType.TARGET_USER_SPONSORS:
        return _("one of your sponsors")
    return _("a designated approver")


def approver_names(stage):
    return [approver_name(approver) for approver in stage.approver_sets.all()]


def join_or(items):
    """'a, b or c': any one of them."""
    if len(items) <= 1:
        return "".join(items)
    return _("%(first)s or %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _duration(delta):
    days = delta.days
    if days and not delta.seconds:
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    hours = int(delta.total_seconds() // 3600)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


def _deciders(stage):
    return join_or(approver_names(stage) or [_("a designated approver")])


def approval_sentence(policy):
    """Who approves under a policy, in one sentence."""
    stages = list(policy.approval_stages.all()) if policy.is_approval_required_for_add else []
    if not stages:
        return _("No approval needed.")
    if len(stages) == 1:
        stage = stages[0]
        # Every name is one person ("one of your sponsors"), so "who has" fits them all.
        return _("Approved by %(who)s, who has %(days)s to decide.") % {
            "who": _deciders(stage),
            "days": _duration(stage.duration_before_automatic_denial),
        }
    parts = [
        _("stage %(n)d by %(who)s") % {"n": stage.sequence, "who": _deciders(stage)}
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
        return _("Access ends on %(date)s.") % {"date": _date(policy.expiration_end_datetime)}
    return _("Access does not expire.")


def _date(moment):
    return date_format(timezone.localtime(moment), "DATE_FORMAT")


def _when(moment):
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def period_sentence(request):
    """How long the access of a request lasts: the period asked for, else the policy's."""
    start, end = request.schedule_start, request.schedule_end
    if start and end:
        text = _("You asked for access from %(start)s until %(end)s.") % {
            "start": _when(start),
            "end": _when(end),
        }
    elif end:
        text = _("You asked for access until %(end)s.") % {"end": _when(end)}
    elif start:
        text = _("You asked for access from %(start)s.") % {"start": _when(start)}
        text += " " + duration_sentence(request.assignment_policy)
    else:
        text = duration_sentence(request.assignment_policy)
    return one_full_stop(text)


def policy_sentences(policy):
    sentences = [approval_sentence(policy), duration_sentence(policy)]
    if policy.allow_custom_assignment_schedule:
        sentences.append(_("You can ask for a specific period."))
    return sentences


def policy_summary(policy):
    return " ".join(policy_sentences(policy))
