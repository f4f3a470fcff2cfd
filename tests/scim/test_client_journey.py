"""The official SCIM client library (scim2-client) provisions a person over HTTP, gives
them a manager, deactivates them and deletes them; their access follows each step."""

import pytest
from scim2_models import Error, PatchOp, PatchOperation

from directory.models import User
from entitlements.models import AssignmentState, AuditEvent
from scim.models import ScimUser
from tests.lifecycle.assignment_helpers import assign, group_resources, is_member, package_giving
from tests.scim.conftest import ENTERPRISE, HttpxScimClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def sdk(live_scim):
    client = HttpxScimClient(live_scim)
    client.discover()
    return client


def test_a_person_provisioned_by_the_scim_client_follows_its_changes_to_the_end(sdk, provisioning):
    model = sdk.get_resource_model("User")
    enterprise = model.get_extension_models()[ENTERPRISE]

    boss = sdk.create(model.model_validate({"userName": "boss@example.com", "displayName": "Bea"}))
    ann = sdk.create(
        model.model_validate(
            {
                "userName": "ann.lee@example.com",
                "displayName": "Ann Lee",
                "title": "Engineer",
                "emails": [{"value": "ann.lee@example.com", "primary": True, "type": "work"}],
                "active": True,
            }
        )
    )
    person = User.objects.get(email="ann.lee@example.com")
    assert person.display_name == "Ann Lee" and person.job_title == "Engineer"
    assert person.is_active

    # She is given access the way any employee is: a delivered assignment.
    resource = group_resources(1)[0]
    package, policy = package_giving(resource)
    assignment = assign(person, package, policy)
    assert is_member(person, resource)

    # A manager, through the enterprise extension.
    manager_op = PatchOp[model](
        operations=[
            PatchOperation(
                op=PatchOperation.Op.add,
                path=f"{ENTERPRISE}:manager",
                value={"value": boss.id},
            )
        ]
    )
    sdk.modify(model, ann.id, manager_op)
    person.refresh_from_db()
    assert person.manager == User.objects.get(email="boss@example.com")
    got = sdk.query(model, ann.id)
    assert got[enterprise].manager.value == boss.id

    # Deactivated: she can no longer sign in and the access she had ends.
    deactivate = PatchOp[model](
        operations=[PatchOperation(op=PatchOperation.Op.replace_, path="active", value=False)]
    )
    sdk.modify(model, ann.id, deactivate)
    person.refresh_from_db()
    assignment.refresh_from_db()
    assert not person.is_active
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(person, resource)

    # Deleted: the resource is gone, the person stays in the directory, disabled, with history.
    sdk.delete(model, ann.id)
    answer = sdk.query(model, ann.id, raise_scim_errors=False)
    assert isinstance(answer, Error) and answer.status == 404
    person.refresh_from_db()
    assert not person.is_active
    assert ScimUser.objects.get(scim_id=ann.id).deleted_at is not None

    actions = list(
        AuditEvent.objects.filter(target=person).order_by("created").values_list("action", "data")
    )
    scim_events = [(action, data) for action, data in actions if data.get("source") == "scim"]
    assert {"user.provisioned", "user.updated", "user.disabled", "scimUser.deleted"} <= {
        action for action, _ in scim_events
    }
    assert all(data["source_name"] == "Entra ID" for _, data in scim_events)
