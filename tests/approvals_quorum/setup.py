"""Builders for the quorum and shortened-grant tests: stages needing several approvals."""

from approvals.services import stage_decide
from entitlements.models import Channel, QuorumMode, SubjectType
from entitlements.services.requests import request_submit
from tests.factories import ApprovalStageFactory, GroupFactory, PolicyFactory, add_approver
from tests.factories import add_member as _add_member
from tests.lifecycle.requests_setup import package_with_roles


def group_of(name, *people):
    group = GroupFactory(display_name=name)
    for person in people:
        _add_member(group, person)
    return group


def quorum_policy(*, groups=(), users=(), mode=QuorumMode.ONE_FROM_EACH, count=None, **stage_kw):
    """A policy with one approval stage whose primary approver entries are ``groups`` and
    ``users``, needing approvals as ``mode`` and ``count`` say."""
    policy = PolicyFactory(access_package=package_with_roles(), is_approval_required_for_add=True)
    stage = ApprovalStageFactory(policy=policy, quorum_mode=mode, quorum_count=count, **stage_kw)
    for group in groups:
        add_approver(stage, subject_type=SubjectType.GROUP_MEMBERS, group=group)
    for person in users:
        add_approver(stage, user=person)
    return policy


def submitted(requester, policy, **kw):
    return request_submit(
        actor=requester, target=requester, access_package=policy.access_package, **kw
    )


def decide(actor, request, decision="Approved", sequence=1, **kw):
    kw.setdefault("channel", Channel.PORTAL)
    stage = request.approval_stages.get(sequence=sequence)
    return stage_decide(actor=actor, stage=stage, decision=decision, **kw)
