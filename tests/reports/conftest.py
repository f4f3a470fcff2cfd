"""Rows for every report, built in bulk so the same data can be had at 10 and at 10,000."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover, StageStatus
from directory.models import User
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    GrantState,
    RequestState,
    RequestType,
    RoleAssignment,
)
from reviews.models import Decision, ReviewInstance, ReviewItem
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    grant_role,
)


class Catalogue:
    """One catalog with two incompatible packages, P1 and P2, each giving a group's Member role.

    ``grow(n)`` makes n people, each holding P1 (ending in 10 days) and P2 (in a year, the
    conflict), a pending request for a third package waiting on the previous person, and an
    access review of P1 with their item: one row per person in every report.
    """

    def __init__(self, name):
        self.name = name
        self.catalog = CatalogFactory(display_name=f"{name} catalog")
        self.p1, self.p2, self.p3 = (
            self._package(f"{name} P{i}", policy_stage=(i == 3)) for i in (1, 2, 3)
        )
        self.p1.package.incompatible_access_packages.add(self.p2.package)
        self.people = []

    class _Package:
        def __init__(self, package, policy, role, stage):
            self.package, self.policy, self.role, self.stage = package, policy, role, stage

    def _package(self, name, *, policy_stage):
        package = AccessPackageFactory(catalog=self.catalog, display_name=name)
        resource = GroupResourceFactory(catalog=self.catalog)
        role = resource.roles.get(origin_id="Member")
        grant_role(package, role)
        if policy_stage:
            stage = ApprovalStageFactory(policy__access_package=package)
            policy = stage.policy
        else:
            stage, policy = None, PolicyFactory(access_package=package)
        return self._Package(package, policy, role, stage)

    def grow(self, total):
        now = timezone.now()
        start = len(self.people)
        people = User.objects.bulk_create(  # in the directory for a year, never signed in
            User(
                email=f"{self.name.lower()}-{i}@example.com",
                display_name=f"{self.name} {i:05}",
                created=now - timedelta(days=365),
            )
            for i in range(start, total)
        )
        self.people += people
        assignments = []
        for person in people:
            for package, end in ((self.p1, now + timedelta(days=10)), (self.p2, None)):
                assignments.append(
                    Assignment(
                        access_package=package.package,
                        assignment_policy=package.policy,
                        target=person,
                        state=AssignmentState.DELIVERED,
                        schedule_start=now - timedelta(days=100),
                        schedule_end=end,
                    )
                )
        Assignment.objects.bulk_create(assignments, batch_size=2000)
        AssignmentResourceRole.objects.bulk_create(
            [
                AssignmentResourceRole(
                    assignment=a,
                    resource_role=self.p1.role
                    if a.access_package_id == self.p1.package.pk
                    else self.p2.role,
                    target_id=a.target_id,
                    state=GrantState.DELIVERED,
                )
                for a in assignments
            ],
            batch_size=2000,
        )
        requests = AssignmentRequest.objects.bulk_create(
            [
                AssignmentRequest(
                    access_package=self.p3.package,
                    assignment_policy=self.p3.policy,
                    requestor=person,
                    target=person,
                    request_type=RequestType.USER_ADD,
                    state=RequestState.PENDING_APPROVAL,
                    created=now - timedelta(days=20),
                )
                for person in people
            ],
            batch_size=2000,
        )
        stages = RequestApprovalStage.objects.bulk_create(
            [
                RequestApprovalStage(
                    request=request,
                    policy_stage=self.p3.stage,
                    sequence=1,
                    status=StageStatus.IN_PROGRESS,
                    opened_datetime=now - timedelta(days=20),
                )
                for request in requests
            ],
            batch_size=2000,
        )
        everyone = self.people
        StageApprover.objects.bulk_create(
            [
                StageApprover(
                    stage=stage,
                    user=everyone[(start + i - 1) % len(everyone)],
                    kind=StageApprover.Kind.PRIMARY,
                )
                for i, stage in enumerate(stages)
            ],
            batch_size=2000,
        )
        instances = ReviewInstance.objects.bulk_create(
            [
                ReviewInstance(
                    policy=self.p1.policy,
                    access_package=self.p1.package,
                    start=now - timedelta(days=5, minutes=start + i),
                    end=now + timedelta(days=9),
                )
                for i in range(len(people))
            ],
            batch_size=2000,
        )
        p1_assignments = [a for a in assignments if a.access_package_id == self.p1.package.pk]
        ReviewItem.objects.bulk_create(
            [
                ReviewItem(
                    instance=instance,
                    assignment=assignment,
                    target_id=assignment.target_id,
                    decision=Decision.DENY if i % 2 else Decision.NOT_REVIEWED,
                    decided_by_id=assignment.target_id if i % 2 else None,
                    decided_datetime=now if i % 2 else None,
                )
                for i, (instance, assignment) in enumerate(
                    zip(instances, p1_assignments, strict=True)
                )
            ],
            batch_size=2000,
        )
        return self


@pytest.fixture
def ours(catalog_owner):
    """The catalog the catalog owner persona owns, with 10 people in every report."""
    catalogue = Catalogue("Ours").grow(10)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalogue.catalog
    )
    return catalogue


@pytest.fixture
def theirs(db):
    """Another catalog, with 3 people in every report, that the catalog owner does not own."""
    return Catalogue("Theirs").grow(3)


@pytest.fixture
def reader(db, ours):
    """A catalog reader of the owner's catalog (not staff: the role lets them in)."""
    from tests.factories import UserFactory

    person = UserFactory(email="reader@example.com", display_name="Rolf Reader")
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_READER, principal=person, catalog=ours.catalog
    )
    return person
