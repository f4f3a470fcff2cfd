"""Delegate rows when the directory changes: manager re-resolution and leavers."""

import pytest

from approvals.services import approvals_reresolve_managers
from entitlements.models import SubjectType
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

from .conftest import approvers_of, delegate, submit

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
