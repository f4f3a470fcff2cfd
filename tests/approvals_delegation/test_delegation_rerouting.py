"""Delegate rows when the directory changes: manager re-resolution and leavers."""

import pytest

from approvals.services import approvals_reresolve_managers, approvals_reroute_from
from entitlements.models import RequestState, SubjectType
from entitlements.services.requests import RequestStatus
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
    grant_role,
)

from .conftest import approvers_of, delegate, make_package, submit

pytestmark = pytest.mark.django_db


def managers_package(*approvers):
    """Approved by the requestor's manager and by ``approvers``, in one stage."""
    catalog = CatalogFactory()
    package = AccessPackageFactory(catalog=catalog)
    resource = GroupResourceFactory(catalog=catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(access_package=package, is_approval_required_for_add=True)
    stage = ApprovalStageFactory(policy=policy, sequence=1)
    add_approver(stage, subject_type=SubjectType.REQUESTOR_MANAGER, manager_level=1)
    for approver in approvers:
        add_approver(stage, user=approver)
    return package


@pytest.fixture
def mona(db):
    return UserFactory(display_name="Mona Manager")


@pytest.fixture
def rita(mona):
    return UserFactory(display_name="Rita Requester", manager=mona)


def test_a_new_manager_leaves_the_delegate_of_another_approver_asked(ben, carl, mona, rita):
    delegate(carl, ben)
    request = submit(rita, managers_package(carl))
    rita.manager = UserFactory(display_name="Max Manager")
    rita.save()

    approvals_reresolve_managers(target_ids=[rita.pk])

    assert approvers_of(request) == {
        ("Max Manager", None),
        ("Carl Example", None),
        ("Ben Example", "Carl Example"),
    }


def test_the_managers_delegate_goes_with_the_manager(ben, carl, mona, rita):
    delegate(mona, ben)
    request = submit(rita, managers_package(carl))
    assert ("Ben Example", "Mona Manager") in approvers_of(request)
    rita.manager = UserFactory(display_name="Max Manager")
    rita.save()

    approvals_reresolve_managers(target_ids=[rita.pk])

    assert approvers_of(request) == {("Max Manager", None), ("Carl Example", None)}


def test_a_leaver_takes_their_delegate_off_their_stages(ann, ben, carl):
    package = make_package("Finance reports", ann, carl)
    delegate(ann, ben)
    request = submit(UserFactory(), package)
    ann.is_active = False
    ann.save()

    approvals_reroute_from(user=ann)

    assert approvers_of(request) == {("Carl Example", None)}


def test_a_leaver_whose_delegate_was_the_only_one_left_gets_the_stage_resolved_again(ann, ben):
    package = make_package("Finance reports", ann)
    delegate(ann, ben)
    request = submit(UserFactory(), package)
    ann.is_active = False
    ann.save()

    approvals_reroute_from(user=ann)

    request.refresh_from_db()
    assert ("Ben Example", "Ann Example") not in approvers_of(request)
    assert request.state == RequestState.DENIED
    assert request.status == RequestStatus.NO_APPROVERS
