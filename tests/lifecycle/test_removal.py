"""Removing an assignment: by its holder, by an administrator, in bulk; shared grants."""

from datetime import timedelta

import pytest
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.errors import PermissionDenied, StateConflict
from entitlements.models import (
    AdminRole,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
    RequestState,
    RequestType,
    RoleAssignment,
)
from entitlements.services.delivery import assignment_revoke
from entitlements.services.ending import assignment_remove, assignments_remove
from entitlements.signals import assignment_ended
from tests.factories import CatalogFactory, GroupResourceFactory, add_member
from tests.lifecycle.assignment_helpers import (
    CountingConnector,
    approved_request,
    assign,
    fulfil,
    group_resources,
    is_member,
    membership_source,
    package_giving,
    use_connector,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def counting(monkeypatch):
    connector = CountingConnector()
    use_connector(monkeypatch, connector)
    return connector


@pytest.fixture
def ended():
    calls = []

    def receive(sender, **kwargs):
        calls.append(kwargs)

    assignment_ended.connect(receive, weak=False)
    yield calls
    assignment_ended.disconnect(receive)


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a call and then what it enqueued on commit (signals, the revocation task)."""

    def run(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return run


@pytest.fixture
def owned_catalog(catalog_owner):
    catalog = CatalogFactory()
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    return catalog


def test_a_user_removes_their_own_access_when_the_policy_allows_it(requester, commit, ended):
    resource = group_resources(1)[0]
    package, policy = package_giving(resource, enable_targets_to_self_remove_access=True)
    assignment = assign(requester, package, policy)

    removal = commit(
        assignment_remove, actor=requester, assignment=assignment, channel=Channel.PORTAL
    )

    assignment.refresh_from_db()
    removal.refresh_from_db()
    assert removal.request_type == RequestType.USER_REMOVE
    assert removal.state == RequestState.DELIVERED
    assert assignment.state == AssignmentState.EXPIRED
    assert assignment.expired_datetime is not None
    assert assignment.grants.get().state == GrantState.REMOVED
    assert not is_member(requester, resource)
    assert [(c["assignment"], c["notify"]) for c in ended] == [(assignment, True)]


def test_a_user_cannot_remove_their_own_access_when_the_policy_does_not_allow_it(requester):
    package, policy = package_giving(
        *group_resources(1), enable_targets_to_self_remove_access=False
    )
    assignment = assign(requester, package, policy)

    with pytest.raises(PermissionDenied, match="does not let you remove your own access"):
        assignment_remove(actor=requester, assignment=assignment, channel=Channel.PORTAL)

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED


def test_someone_without_an_admin_role_cannot_remove_another_person_s_access(requester, outsider):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy)

    with pytest.raises(PermissionDenied, match="someone else's access"):
        assignment_remove(actor=outsider, assignment=assignment, channel=Channel.PORTAL)


def test_a_catalog_owner_removes_access_silently_unless_asked_to_notify(
    requester, catalog_owner, owned_catalog, commit, ended
):
    resources = group_resources(1, catalog=owned_catalog)
    package, policy = package_giving(*resources)
    silent, loud = assign(requester, package, policy), None

    removal = commit(
        assignment_remove,
        actor=catalog_owner,
        assignment=silent,
        channel=Channel.ADMIN,
        reason="Left the project",
    )
    loud = assign(requester, package, policy)
    commit(
        assignment_remove,
        actor=catalog_owner,
        assignment=loud,
        channel=Channel.ADMIN,
        notify=True,
    )

    assert removal.request_type == RequestType.ADMIN_REMOVE
    assert removal.requestor == catalog_owner
    assert removal.justification == "Left the project"
    assert [c["notify"] for c in ended] == [False, True]
    event = AuditEvent.objects.get(action="assignment.removed", object_id=str(silent.pk))
    assert (event.actor, event.channel, event.reason) == (
        catalog_owner,
        Channel.ADMIN,
        "Left the project",
    )


def test_an_owner_of_another_catalog_cannot_remove_access(requester, catalog_owner, owned_catalog):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy)

    with pytest.raises(PermissionDenied):
        assignment_remove(actor=catalog_owner, assignment=assignment, channel=Channel.ADMIN)


def test_access_that_already_ended_cannot_be_removed_again(requester, admin_user):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy)
    assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    with pytest.raises(StateConflict, match="already ended"):
        assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)


def test_removal_cancels_an_open_extension_request(requester, admin_user, commit):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy)
    extension = approved_request(
        requester,
        package,
        policy,
        request_type=RequestType.USER_EXTEND,
        assignment=assignment,
        schedule_end=timezone.now() + timedelta(days=60),
    )

    commit(assignment_remove, actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    extension.refresh_from_db()
    assert extension.state == RequestState.CANCELED
    assert AuditEvent.objects.filter(action="request.canceled", request=extension).exists()


def test_removal_before_delivery_closes_the_add_request_so_the_user_can_ask_again(
    requester, admin_user, commit
):
    package, policy = package_giving(*group_resources(1))
    request = approved_request(requester, package, policy)
    assignment = fulfil(request)  # delivery not run yet: the worker is behind
    assert request.state == RequestState.DELIVERING

    commit(assignment_remove, actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    request.refresh_from_db()
    assert (request.state, request.status) == (RequestState.CANCELED, "AssignmentEnded")
    again = approved_request(requester, package, policy)  # the open-request slot is free
    assert again.pk


# --- Grants shared by two packages ----------------------------------------------------------


def test_removing_one_of_two_packages_giving_the_same_group_keeps_the_membership(
    requester, admin_user, counting, commit
):
    shared = group_resources(1)[0]
    first, first_policy = package_giving(shared)
    second, second_policy = package_giving(shared)
    one = assign(requester, first, first_policy)
    other = assign(requester, second, second_policy)

    commit(assignment_remove, actor=admin_user, assignment=one, channel=Channel.ADMIN)

    assert is_member(requester, shared)
    assert counting.revoked == []
    assert one.grants.get().state == GrantState.REMOVED

    commit(assignment_remove, actor=admin_user, assignment=other, channel=Channel.ADMIN)

    assert not is_member(requester, shared)
    assert len(counting.revoked) == 1


def test_two_catalogs_offering_the_same_group_share_the_membership(requester, admin_user, commit):
    left = GroupResourceFactory()
    right = GroupResourceFactory(group=left.group, catalog=CatalogFactory())
    first, first_policy = package_giving(left)
    second, second_policy = package_giving(right)
    one = assign(requester, first, first_policy)
    assign(requester, second, second_policy)

    commit(assignment_remove, actor=admin_user, assignment=one, channel=Channel.ADMIN)

    assert is_member(requester, right)


def test_a_membership_given_outside_the_product_is_never_removed(requester, admin_user, commit):
    resource = group_resources(1)[0]
    add_member(resource.group, requester)
    package, policy = package_giving(resource)
    assignment = assign(requester, package, policy)

    commit(assignment_remove, actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    assert membership_source(requester, resource) == "direct"
    assert GroupMembership.objects.filter(user=requester).count() == 1


# --- Failures and bulk ------------------------------------------------------------------------


def test_a_failed_revocation_is_kept_and_a_later_run_finishes_it(requester, admin_user, counting):
    resource = group_resources(1)[0]
    package, policy = package_giving(resource)
    assignment = assign(requester, package, policy)
    removal = assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)
    counting.failing = {resource.roles.get(origin_id="Member").pk}

    failed = assignment_revoke(assignment_id=assignment.pk)

    grant = assignment.grants.get()
    removal.refresh_from_db()
    assert not failed.ok
    assert (grant.state, grant.attempts) == (GrantState.REMOVAL_FAILED, 1)
    assert removal.state == RequestState.DELIVERY_FAILED
    assert is_member(requester, resource)

    counting.failing = set()
    assignment_revoke(assignment_id=assignment.pk)

    removal.refresh_from_db()
    assert removal.state == RequestState.DELIVERED
    assert not is_member(requester, resource)


def test_bulk_removal_removes_what_it_may_and_says_why_it_refused_the_rest(
    requester, outsider, catalog_owner, owned_catalog
):
    mine, mine_policy = package_giving(*group_resources(1, catalog=owned_catalog))
    theirs, theirs_policy = package_giving(*group_resources(1))
    allowed = assign(requester, mine, mine_policy)
    also_allowed = assign(outsider, mine, mine_policy)
    foreign = assign(requester, theirs, theirs_policy)

    result = assignments_remove(
        actor=catalog_owner,
        assignments=[allowed, foreign, also_allowed],
        channel=Channel.ADMIN,
        reason="Project closed",
    )

    assert [r.assignment for r in result.done] == [allowed, also_allowed]
    assert [(a, "catalog" in why) for a, why in result.refused] == [(foreign, True)]
    foreign.refresh_from_db()
    assert foreign.state == AssignmentState.DELIVERED
