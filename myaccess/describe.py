"""Plain-words descriptions of policies and packages, for people who request access.

They read only prefetched relations (see ``PACKAGE_PREFETCH``), so a list of packages
costs the same number of queries whatever its length.
"""

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

# The sentences themselves live in entitlements, where the admin's guided flow shows them too.
from entitlements.describe import (  # noqa: F401 - the portal's views read them from here
    approval_sentence,
    approver_name,
    approver_names,
    duration_sentence,
    grants,
    join_or,
    policy_sentences,
)
from entitlements.models import (
    ApprovalStage,
    AssignmentPolicy,
    Question,
    ResourceRoleScope,
    StageApproverSet,
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


def policy_summary(policy):
    return " ".join(policy_sentences(policy))
