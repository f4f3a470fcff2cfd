"""Configuration changed in the admin is in the audit trail: who, when, and each changed
field's value before and after; a save the admin refuses leaves no trace."""

import csv
import io
import json

import pytest
from django.urls import reverse

from directory.models import Application, AppRole
from entitlements.configuration import config_delete, resource_add
from entitlements.models import (
    AccessPackage,
    AdminRole,
    ApprovalStage,
    AssignmentPolicy,
    AuditEvent,
    Catalog,
    Channel,
    PolicySubjectSet,
    Question,
    Resource,
    RoleAssignment,
    StageApproverSet,
    SubjectType,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
)
from tests.foundation.admin_support import add_row, admin_url, errors_of, page_data


@pytest.fixture
def signed_in(client, admin_user):
    client.force_login(admin_user)
    return client


def _saved(client, model, obj, **changes):
    """Submit ``obj``'s admin change page as rendered, with ``changes``; return the response."""
    url = admin_url(model, "change", obj.pk)
    data = page_data(client.get(url))
    data.update(changes)
    return client.post(url, data)


def _events(action):
    return list(AuditEvent.objects.filter(action=action))


def _only_event(action, actor, channel=Channel.ADMIN):
    events = _events(action)
    assert len(events) == 1, [e.action for e in AuditEvent.objects.all()]
    event = events[0]
    assert (event.actor, event.channel) == (actor, channel)
    return event


def test_creating_a_catalog_records_its_values_and_the_creator_as_its_owner(signed_in, admin_user):
    data = page_data(signed_in.get(admin_url(Catalog, "add")))
    data.update(display_name="Finance", description="Money")

    assert signed_in.post(admin_url(Catalog, "add"), data).status_code == 302

    catalog = Catalog.objects.get(display_name="Finance")
    event = _only_event("catalog.created", admin_user)
    assert event.object_id == str(catalog.pk)
    assert event.data["before"] == {}
    assert event.data["after"]["display_name"] == "Finance"
    assert event.data["after"]["description"] == "Money"
    owner = _only_event("roleAssignment.created", admin_user)
    assert owner.data["after"]["principal_id"] == str(admin_user.pk)
    assert owner.data["after"]["role"] == AdminRole.CATALOG_OWNER


def test_changing_a_catalog_records_only_the_fields_that_changed(signed_in, admin_user):
    catalog = CatalogFactory(display_name="Old name")

    response = _saved(signed_in, Catalog, catalog, display_name="New name")

    assert response.status_code == 302
    event = _only_event("catalog.changed", admin_user)
    assert event.data == {
        "before": {"display_name": "Old name"},
        "after": {"display_name": "New name"},
    }


def test_saving_a_page_unchanged_records_nothing(signed_in):
    catalog = CatalogFactory()

    assert _saved(signed_in, Catalog, catalog).status_code == 302

    assert not AuditEvent.objects.exists()


def test_deleting_a_catalog_records_the_values_it_had(signed_in, admin_user):
    catalog = CatalogFactory(display_name="Short-lived")

    response = signed_in.post(admin_url(Catalog, "delete", catalog.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Catalog.objects.filter(pk=catalog.pk).exists()
    event = _only_event("catalog.deleted", admin_user)
    assert event.object_id == str(catalog.pk)
    assert event.data["before"]["display_name"] == "Short-lived"
    assert event.data["after"] == {}


def test_deleting_catalogs_from_the_list_records_one_event_each(signed_in, admin_user):
    catalogs = [CatalogFactory(), CatalogFactory()]
    data = {
        "action": "delete_selected",
        "post": "yes",
        "_selected_action": [str(c.pk) for c in catalogs],
    }

    response = signed_in.post(admin_url(Catalog, "changelist"), data)

    assert response.status_code == 302
    assert not Catalog.objects.filter(pk__in=[c.pk for c in catalogs]).exists()
    events = _events("catalog.deleted")
    assert sorted(e.object_id for e in events) == sorted(str(c.pk) for c in catalogs)
    assert {e.actor for e in events} == {admin_user}


def test_giving_an_admin_role_on_the_catalog_page_records_it(signed_in, admin_user):
    catalog, person = CatalogFactory(), UserFactory()
    url = admin_url(Catalog, "change", catalog.pk)
    data = page_data(signed_in.get(url))
    add_row(data, "role_assignments", principal=person, role=AdminRole.ACCESS_PACKAGE_MANAGER)

    assert signed_in.post(url, data).status_code == 302

    event = _only_event("roleAssignment.created", admin_user)
    assert event.data["after"]["principal_id"] == str(person.pk)
    assert event.data["after"]["catalog_id"] == str(catalog.pk)
    assert RoleAssignment.objects.filter(principal=person, catalog=catalog).exists()


def test_taking_an_admin_role_away_records_the_role_it_was(signed_in, admin_user):
    catalog, person = CatalogFactory(), UserFactory()
    role = RoleAssignment.objects.create(
        principal=person, role=AdminRole.CATALOG_READER, catalog=catalog
    )

    response = signed_in.post(admin_url(RoleAssignment, "delete", role.pk), {"post": "yes"})

    assert response.status_code == 302
    event = _only_event("roleAssignment.deleted", admin_user)
    assert event.data["before"]["role"] == AdminRole.CATALOG_READER


def test_changing_a_resource_records_it(signed_in, admin_user):
    resource = GroupResourceFactory(description="")

    assert _saved(signed_in, Resource, resource, description="Sales team").status_code == 302

    changed = _only_event("resource.changed", admin_user)
    assert changed.data == {"before": {"description": ""}, "after": {"description": "Sales team"}}


def test_bringing_a_resources_roles_up_to_date_records_the_roles_it_gained(signed_in, admin_user):
    app = Application.objects.create(display_name="Payroll")
    AppRole.objects.create(application=app, display_name="Clerk")
    resource = resource_add(
        actor=None, catalog=CatalogFactory(), origin_system="AadApplication", application=app
    )
    AppRole.objects.create(application=app, display_name="Auditor")
    data = {"action": "sync_roles", "_selected_action": [str(resource.pk)]}

    assert signed_in.post(admin_url(Resource, "changelist"), data).status_code == 302

    event = _only_event("resource.rolesAdded", admin_user)
    assert event.data == {
        "before": {"roles": ["Clerk"]},
        "after": {"roles": ["Auditor", "Clerk"]},
    }


def test_a_resource_with_a_long_name_is_added_and_audited(admin_user):
    # The event's before/after columns hold states (64 characters); names go in its data.
    group = GroupFactory(display_name="A group with a long name " * 4)

    resource = resource_add(
        actor=admin_user, catalog=CatalogFactory(), origin_system="AadGroup", group=group
    )

    event = _only_event("resource.added", admin_user, channel=Channel.SYSTEM)
    assert event.data["after"]["display_name"] == resource.display_name == group.display_name


def test_removing_a_resource_records_what_it_was(admin_user):
    # The admin's delete page refuses (its roles cannot be deleted there); the service audits.
    resource = GroupResourceFactory()

    config_delete(actor=admin_user, objs=[resource], channel=Channel.ADMIN)

    assert not Resource.objects.filter(pk=resource.pk).exists()
    removed = _only_event("resource.deleted", admin_user)
    assert removed.data["before"]["origin_id"] == resource.origin_id
    assert removed.data["before"]["catalog_id"] == str(resource.catalog_id)


def test_changing_a_package_records_its_fields_and_incompatible_groups(signed_in, admin_user):
    package, group = AccessPackageFactory(is_hidden=False), GroupFactory()

    response = _saved(
        signed_in, AccessPackage, package, is_hidden="on", incompatible_groups=[str(group.pk)]
    )

    assert response.status_code == 302
    event = _only_event("accessPackage.changed", admin_user)
    assert event.access_package_id == package.pk
    assert event.data == {
        "before": {"is_hidden": False, "incompatible_groups": []},
        "after": {"is_hidden": True, "incompatible_groups": [str(group.pk)]},
    }


def test_creating_a_package_and_its_policy_records_each(signed_in, admin_user):
    catalog = CatalogFactory()
    data = page_data(signed_in.get(admin_url(AccessPackage, "add")))
    data.update(catalog=str(catalog.pk), display_name="Sales tools")

    assert signed_in.post(admin_url(AccessPackage, "add"), data).status_code == 302

    package = AccessPackage.objects.get(display_name="Sales tools")
    created = _only_event("accessPackage.created", admin_user)
    assert created.access_package_id == package.pk
    assert created.data["after"]["catalog_id"] == str(catalog.pk)
    data = page_data(signed_in.get(admin_url(AssignmentPolicy, "add")))
    data.update(access_package=str(package.pk), display_name="Employees")

    assert signed_in.post(admin_url(AssignmentPolicy, "add"), data).status_code == 302

    policy = _only_event("assignmentPolicy.created", admin_user)
    assert policy.access_package_id == package.pk
    assert policy.data["after"]["display_name"] == "Employees"


def test_changing_review_settings_and_reviewers_of_a_policy_records_both(signed_in, admin_user):
    policy, reviewer = PolicyFactory(), UserFactory()
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(signed_in.get(url))
    data.update(review_is_enabled="on", review_start_date="2030-01-01")
    add_row(
        data,
        "subject_sets",
        purpose=PolicySubjectSet.Purpose.PRIMARY_REVIEWER,
        subject_type=SubjectType.SINGLE_USER,
        user=reviewer,
    )

    assert signed_in.post(url, data).status_code == 302

    event = _only_event("assignmentPolicy.changed", admin_user)
    assert event.access_package_id == policy.access_package_id
    assert event.data["before"]["review_is_enabled"] is False
    assert event.data["after"]["review_is_enabled"] is True
    assert event.data["after"]["review_start_date"].startswith("2030-01-01")
    subject = _only_event("policySubjectSet.created", admin_user)
    assert subject.data["after"]["user_id"] == str(reviewer.pk)
    assert subject.access_package_id == policy.access_package_id


def test_a_policy_save_the_admin_refuses_records_nothing(signed_in):
    policy = PolicyFactory()

    response = _saved(
        signed_in,
        AssignmentPolicy,
        policy,
        review_is_enabled="on",
        review_start_date="2030-01-01",
    )

    assert response.status_code == 200
    assert any("nobody reviews" in e for e in errors_of(response))
    assert not AuditEvent.objects.exists()


def test_changing_a_stage_and_its_approvers_records_both(signed_in, admin_user):
    stage = ApprovalStageFactory()
    first, second = UserFactory(), UserFactory()
    add_approver(stage, user=first)
    url = admin_url(ApprovalStage, "change", stage.pk)
    data = page_data(signed_in.get(url))
    data["approver_sets-0-DELETE"] = "on"
    add_row(
        data,
        "approver_sets",
        purpose=StageApproverSet.Purpose.PRIMARY,
        subject_type=SubjectType.SINGLE_USER,
        user=second,
    )
    data["is_approver_justification_required"] = "on"

    assert signed_in.post(url, data).status_code == 302

    changed = _only_event("approvalStage.changed", admin_user)
    assert changed.data["after"] == {"is_approver_justification_required": True}
    removed = _only_event("stageApproverSet.deleted", admin_user)
    assert removed.data["before"]["user_id"] == str(first.pk)
    added = _only_event("stageApproverSet.created", admin_user)
    assert added.data["after"]["user_id"] == str(second.pk)
    assert added.access_package_id == stage.policy.access_package_id


def test_changing_a_question_its_choices_and_translations_records_each(signed_in, admin_user):
    question = QuestionFactory(text="Why?")
    url = admin_url(Question, "change", question.pk)
    data = page_data(signed_in.get(url))
    data.update(text="Why do you need it?")
    add_row(data, "choices", sequence=1, actual_value="a", text="Audit")
    add_row(data, "localizations", language_code="fr", text="Pourquoi ?")

    assert signed_in.post(url, data).status_code == 302

    changed = _only_event("question.changed", admin_user)
    assert changed.data == {"before": {"text": "Why?"}, "after": {"text": "Why do you need it?"}}
    assert _only_event("questionChoice.created", admin_user).data["after"]["text"] == "Audit"
    translated = _only_event("questionLocalization.created", admin_user)
    assert translated.data["after"]["language_code"] == "fr"


@pytest.mark.parametrize(
    ("model", "factory", "showing", "saving"),
    [
        (Catalog, CatalogFactory, 10, 10),
        (AccessPackage, AccessPackageFactory, 10, 18),
        # The form validates each of the policy's check constraints in a savepoint; the third
        # (one automatic policy per package) adds its SAVEPOINT, SELECT and RELEASE.
        (AssignmentPolicy, PolicyFactory, 10, 20),
        # A stage's page also reads its policy and approvers for the quorum's checks; its two
        # quorum constraints add a savepoint each.
        (ApprovalStage, ApprovalStageFactory, 11, 24),
    ],
    ids=["catalog", "package", "policy", "stage"],
)
def test_a_change_page_and_its_save_run_a_bounded_number_of_queries(
    signed_in, model, factory, showing, saving, django_assert_max_num_queries
):
    obj = factory()
    if model is ApprovalStage:
        add_approver(obj, user=UserFactory())
    url = admin_url(model, "change", obj.pk)

    with django_assert_max_num_queries(showing):
        data = page_data(signed_in.get(url))
    with django_assert_max_num_queries(saving):
        assert signed_in.post(url, data).status_code == 302


def test_the_audit_export_shows_a_changes_values_before_and_after(signed_in):
    catalog = CatalogFactory(display_name="Old name")
    _saved(signed_in, Catalog, catalog, display_name="New name")

    response = signed_in.get(reverse("admin:entitlements_auditevent_export"))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-1] == "details"
    assert json.loads(rows[1][-1]) == {
        "before": {"display_name": "Old name"},
        "after": {"display_name": "New name"},
    }
