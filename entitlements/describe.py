"""Plain-words descriptions of policies and packages, as the person requesting reads them.

My Access shows them next to each package and policy; the admin's guided package flow shows
the same sentences before anything is saved, so they read relations through ``.all()`` only
(a prefetched relation, or a list of unsaved rows offering ``all()``).
"""

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import ExpirationType, SubjectType


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


def policy_sentences(policy):
    sentences = [approval_sentence(policy), duration_sentence(policy)]
    if policy.allow_custom_assignment_schedule:
        sentences.append(_("You can ask for a specific period."))
    return sentences
