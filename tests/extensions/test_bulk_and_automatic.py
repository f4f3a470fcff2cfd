"""A bulk admin add through a policy that calls extensions when a request is created or
approved goes one person at a time through request_submit, so each gets the callout."""

import pytest

from entitlements.models import AdminRole, BulkJob, RoleAssignment
from entitlements.services.bulk import bulk_job_prepare, bulk_job_run, bulk_job_start
from extensions.models import CustomExtensionCallout, Stage
from tests.admin_assign.conftest import people
from tests.extensions.helpers import attach_extension
from tests.factories import GroupResourceFactory, UserFactory
from tests.lifecycle.assignment_helpers import package_giving

pytestmark = pytest.mark.django_db


@pytest.fixture
def package_and_policy(db):
    return package_giving(GroupResourceFactory(), allowed_target_scope="allMemberUsers")


@pytest.fixture
def owner(package_and_policy):
    owner = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=owner, catalog=package_and_policy[0].catalog
    )
    return owner


def add_in_bulk(owner, package, policy, users, capture):
    job = bulk_job_prepare(
        actor=owner,
        kind=BulkJob.Kind.ADD,
        access_package=package,
        policy=policy,
        users=[(u, n) for n, u in enumerate(users, start=1)],
        justification="Project Falcon",
    )
    bulk_job_start(actor=owner, job=job)
    with capture(execute=True):
        return bulk_job_run(job_id=job.pk)


@pytest.mark.parametrize("stage", [Stage.REQUEST_CREATED, Stage.REQUEST_APPROVED])
def test_a_bulk_add_calls_the_policys_request_extension_for_each_person(
    owner, package_and_policy, receiver, django_capture_on_commit_callbacks, stage
):
    package, policy = package_and_policy
    extension = attach_extension(policy, stage, url=receiver.url)
    team = people(3)

    job = add_in_bulk(owner, package, policy, team, django_capture_on_commit_callbacks)

    assert job.state == BulkJob.State.DONE and job.done_count == 3
    callouts = CustomExtensionCallout.objects.filter(custom_extension=extension, stage=stage)
    assert sorted(c.request.target_id for c in callouts) == sorted(u.pk for u in team)
    assert len(receiver.delivered) == 3
