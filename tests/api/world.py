"""One small organisation with a row of every kind the API serves, for the tests that drive
every route (schemathesis, the wrong-person matrix): two catalogs with their owners and a
reader, a group resource, packages with role scopes, policies (one with an approval
stage), a request waiting for approval, delivered assignments, a connected organisation and
an access review in progress.

Requests go through ``request_submit`` so their approval stages exist as the services make
them; call ``build_world`` where on-commit callbacks run (a transactional test, or inside
``django_capture_on_commit_callbacks(execute=True)``).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from approvals.models import RequestApprovalStage
from directory.models import User
from entitlements.models import AdminRole, Channel, RoleAssignment
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    ConnectedOrganizationFactory,
    GroupFactory,
    GroupResourceFactory,
    UserFactory,
    add_member,
    grant_role,
)
from tests.lifecycle.requests_setup import approval_policy, give_assignment, open_policy


@dataclass
class World:
    admin: User
    requester: User
    manager: User
    approver: User
    owner: User  # owner of catalog ``a``
    reader: User  # reader of catalog ``a``
    other_owner: User  # owner of catalog ``b`` only
    outsider: User
    objects: dict = field(default_factory=dict)


def _user(email, name, **kw):
    return User.objects.filter(email=email).first() or UserFactory(
        email=email, display_name=name, **kw
    )


def build_world():
    from entitlements.services.requests import request_submit

    manager = _user("w-manager@example.com", "Mona Manager")
    world = World(
        admin=_user("w-admin@example.com", "Ada Admin", is_staff=True, is_superuser=True),
        requester=_user("w-requester@example.com", "Rita Requester", manager=manager),
        manager=manager,
        approver=_user("w-approver@example.com", "Arno Approver"),
        owner=_user("w-owner@example.com", "Olga Owner", is_staff=True),
        reader=_user("w-reader@example.com", "Rene Reader", is_staff=True),
        other_owner=_user("w-other@example.com", "Omar Other", is_staff=True),
        outsider=_user("w-outsider@example.com", "Otto Outsider"),
    )
    a = CatalogFactory(display_name="World A", description="The catalog under test")
    b = CatalogFactory(display_name="World B")
    for role, person, catalog in [
        (AdminRole.CATALOG_OWNER, world.owner, a),
        (AdminRole.CATALOG_READER, world.reader, a),
        (AdminRole.CATALOG_OWNER, world.other_owner, b),
    ]:
        RoleAssignment.objects.create(role=role, principal=person, catalog=catalog)

    group = GroupFactory(display_name="World engineers")
    add_member(group, world.requester)
    resource = GroupResourceFactory(catalog=a, group=group)
    package = AccessPackageFactory(catalog=a, display_name="World tools")
    grant_role(package, resource.roles.get(origin_id="Member"))
    approved = approval_policy(package=package, approvers=[world.approver])
    approved.display_name = "With approval"
    approved.save(update_fields=["display_name"])
    open_package = AccessPackageFactory(catalog=a, display_name="World open")
    grant_role(open_package, resource.roles.get(origin_id="Owner"))
    free = open_policy(package=open_package)
    b_package = AccessPackageFactory(catalog=b, display_name="World B tools")
    b_policy = open_policy(package=b_package)

    pending = request_submit(
        actor=world.requester,
        target=world.requester,
        access_package=package,
        policy=approved,
        justification="For the tests",
        channel=Channel.PORTAL,
    )
    holder = _user("w-holder@example.com", "Hal Holder")
    held = give_assignment(holder, open_package, free, now=timezone.now())
    b_held = give_assignment(world.outsider, b_package, b_policy, now=timezone.now())
    organisation = ConnectedOrganizationFactory(display_name="World partner")
    organisation.internal_sponsors.add(world.manager)

    world.objects.update(
        catalog=a,
        other_catalog=b,
        group=group,
        resource=resource,
        package=package,
        open_package=open_package,
        other_package=b_package,
        policy=approved,
        open_policy=free,
        request=pending,
        assignment=held,
        other_assignment=b_held,
        organisation=organisation,
        holder=holder,
    )
    review = _review(free, world.manager)
    world.objects.update(
        review=review,
        item=review.items.first(),
        stage=RequestApprovalStage.objects.filter(request=pending).first(),
        member_role=resource.roles.get(origin_id="Member"),
        role_scope=package.resource_role_scopes.first(),
        spare_group=GroupFactory(display_name="World spare group"),
    )
    return world


def _review(policy, reviewer):
    """An access review of ``policy``'s assignments in progress, reviewed by ``reviewer``."""
    from entitlements.models import PolicySubjectSet, SubjectType
    from reviews.services import review_instance_create

    now = timezone.now()
    policy.review_is_enabled = True
    policy.review_start_date = now.date()
    policy.save(update_fields=["review_is_enabled", "review_start_date"])
    PolicySubjectSet.objects.create(
        policy=policy,
        purpose=PolicySubjectSet.Purpose.PRIMARY_REVIEWER,
        subject_type=SubjectType.SINGLE_USER,
        user=reviewer,
    )
    return review_instance_create(
        policy=policy, start=now - timedelta(hours=1), end=now + timedelta(days=14)
    )
