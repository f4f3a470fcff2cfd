"""The admin site: every page renders, strangers are kept out, lists stay cheap, exports stream."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover
from directory.models import Application, AppRole
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AuditEvent,
    Catalog,
    Channel,
    Resource,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
)
from tests.foundation.admin_support import admin_url, give_role, page_data

REGISTERED = sorted(site._registry.items(), key=lambda item: item[0]._meta.label)
IDS = [model._meta.label for model, _admin in REGISTERED]


def _may_add(model_admin, user):
    request = RequestFactory().get("/")
    request.user = user
    return model_admin.has_add_permission(request)


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=IDS)
def test_every_changelist_and_add_page_renders_for_a_superuser(
    client, admin_user, model, model_admin
):
    client.force_login(admin_user)

    assert client.get(admin_url(model, "changelist")).status_code == 200
    expected = 200 if _may_add(model_admin, admin_user) else 403
    assert client.get(admin_url(model, "add")).status_code == expected


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=IDS)
def test_it_refuses_every_admin_page_to_a_signed_in_person_without_a_role(
    client, outsider, model, model_admin
):
    client.force_login(outsider)

    for view in ("changelist", "add"):
        response = client.get(admin_url(model, view))
        assert response.status_code in (302, 403)
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login"))


def test_a_catalog_owner_who_is_not_staff_enters_the_admin(client, db):
    owner = UserFactory(is_staff=False)
    give_role(owner, AdminRole.CATALOG_OWNER, CatalogFactory())
    client.force_login(owner)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert b"Access packages" in response.content


def test_a_role_holder_signed_in_through_the_product_enters_the_admin_and_others_do_not(client, db):
    from tests.factories import PASSWORD

    reader = UserFactory(email="reader@example.com")
    give_role(reader, AdminRole.CATALOG_READER, CatalogFactory())
    UserFactory(email="nobody@example.com")

    client.post("/accounts/login/", {"login": "nobody@example.com", "password": PASSWORD})
    assert client.get(reverse("admin:index")).status_code == 302
    client.logout()
    client.post("/accounts/login/", {"login": "reader@example.com", "password": PASSWORD})
    assert client.get(reverse("admin:index")).status_code == 200


# --------------------------------------------------------------------------------------
# Resources added through the admin get their roles
# --------------------------------------------------------------------------------------


def test_adding_a_group_to_a_catalog_creates_its_member_and_owner_roles(client, admin_user):
    catalog, group = CatalogFactory(), GroupFactory()
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(Resource, "add")))
    data.update(catalog=catalog.pk, origin_system="AadGroup", group=group.pk)

    response = client.post(admin_url(Resource, "add"), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    resource = Resource.objects.get(catalog=catalog, group=group)
    assert resource.display_name == group.display_name
    assert sorted(resource.roles.values_list("display_name", flat=True)) == ["Member", "Owner"]


def test_adding_an_application_creates_a_role_per_app_role(client, admin_user):
    catalog = CatalogFactory()
    app = Application.objects.create(display_name="Payroll")
    AppRole.objects.create(application=app, display_name="Clerk")
    AppRole.objects.create(application=app, display_name="Auditor")
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(Resource, "add")))
    data.update(catalog=catalog.pk, origin_system="AadApplication", application=app.pk)

    assert client.post(admin_url(Resource, "add"), data).status_code == 302

    resource = Resource.objects.get(application=app)
    assert sorted(resource.roles.values_list("display_name", flat=True)) == ["Auditor", "Clerk"]


def test_it_refuses_a_group_resource_without_a_group_and_names_the_field(client, admin_user):
    catalog = CatalogFactory()
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(Resource, "add")))
    data.update(catalog=catalog.pk, origin_system="AadGroup")

    response = client.post(admin_url(Resource, "add"), data)

    assert response.status_code == 200
    assert "group" in response.context["adminform"].form.errors
    assert not Resource.objects.filter(catalog=catalog).exists()


def test_it_refuses_to_add_the_same_group_twice_to_a_catalog(client, admin_user):
    existing = GroupResourceFactory()
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(Resource, "add")))
    data.update(catalog=existing.catalog.pk, origin_system="AadGroup", group=existing.group.pk)

    response = client.post(admin_url(Resource, "add"), data)

    assert "already a resource" in str(response.context["adminform"].form.errors["group"])
    assert Resource.objects.filter(catalog=existing.catalog).count() == 1


# --------------------------------------------------------------------------------------
# Requests, assignments and audit: bounded queries, read-only
# --------------------------------------------------------------------------------------


@pytest.fixture
def busy_catalog(db):
    """Three packages with 20 assignments, requests, grants, stages and audit events each."""
    catalog = CatalogFactory()
    resource = GroupResourceFactory(catalog=catalog)
    role = resource.roles.get(origin_id="Member")
    approver = UserFactory()
    now = timezone.now()
    for _n in range(3):
        stage = ApprovalStageFactory(policy=PolicyFactory(access_package__catalog=catalog))
        policy = stage.policy
        package = policy.access_package
        for _i in range(20):
            target = UserFactory()
            assignment = Assignment.objects.create(
                access_package=package, assignment_policy=policy, target=target, state="delivered"
            )
            req = AssignmentRequest.objects.create(
                access_package=package,
                assignment_policy=policy,
                requestor=target,
                target=target,
                assignment=assignment,
                request_type="userAdd",
                state="delivered",
            )
            AssignmentResourceRole.objects.create(
                assignment=assignment, resource_role=role, target=target, state="delivered"
            )
            request_stage = RequestApprovalStage.objects.create(
                request=req, policy_stage=stage, sequence=1, status="inProgress"
            )
            StageApprover.objects.create(stage=request_stage, user=approver, kind="primary")
            AuditEvent.objects.create(
                actor=target,
                actor_display=str(target),
                channel=Channel.PORTAL,
                action="requestSubmit",
                object_type="entitlements.AssignmentRequest",
                object_id=str(req.pk),
                after="submitted",
                target=target,
                access_package=package,
                request=req,
                created=now - timedelta(minutes=_i),
            )
    return catalog


@pytest.mark.parametrize(
    "model",
    [AssignmentRequest, Assignment, AssignmentResourceRole, AuditEvent, RequestApprovalStage],
    ids=lambda m: m.__name__,
)
def test_the_changelist_runs_a_bounded_number_of_queries(
    client, admin_user, busy_catalog, model, django_assert_max_num_queries
):
    client.force_login(admin_user)
    url = admin_url(model, "changelist")
    client.get(url)  # warm caches (content types, sessions) so only the page's queries count

    with django_assert_max_num_queries(12):
        response = client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 60


def test_a_catalog_owner_sees_the_requests_of_their_catalog_with_bounded_queries(
    client, busy_catalog, django_assert_max_num_queries
):
    owner = UserFactory()
    give_role(owner, AdminRole.CATALOG_OWNER, busy_catalog)
    client.force_login(owner)
    url = admin_url(AssignmentRequest, "changelist")
    client.get(url)

    with django_assert_max_num_queries(12):
        response = client.get(url)

    assert len(response.context["cl"].result_list) == 60


def test_requests_and_assignments_are_read_only_even_for_a_superuser(
    client, admin_user, busy_catalog
):
    assignment = Assignment.objects.first()
    client.force_login(admin_user)

    response = client.get(admin_url(Assignment, "change", assignment.pk))

    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert (
        client.post(admin_url(Assignment, "delete", assignment.pk), {"post": "yes"}).status_code
        == 403
    )
    assert Assignment.objects.filter(pk=assignment.pk).exists()


def test_audit_events_cannot_be_added_changed_or_deleted(client, admin_user, busy_catalog):
    event = AuditEvent.objects.first()
    client.force_login(admin_user)

    assert client.get(admin_url(AuditEvent, "add")).status_code == 403
    assert (
        client.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    )
    changelist = client.get(admin_url(AuditEvent, "changelist"))
    assert "delete_selected" not in dict(changelist.context["action_form"].fields["action"].choices)
    change = client.post(admin_url(AuditEvent, "change", event.pk), {"action": "tampered"})
    assert change.status_code == 403
    event.refresh_from_db()
    assert event.action == "requestSubmit"


def _csv_rows(response):
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_audit_changelist_links_to_a_csv_export_of_what_it_shows(
    client, admin_user, busy_catalog
):
    package = AuditEvent.objects.first().access_package
    client.force_login(admin_user)
    changelist = admin_url(AuditEvent, "changelist")

    page = client.get(changelist, {"package": package.pk})
    export_url = reverse("admin:entitlements_auditevent_export") + f"?package={package.pk}"
    assert export_url in page.content.decode()
    response = client.get(export_url)

    assert response.streaming
    rows = _csv_rows(response)
    assert rows[0][:4] == ["time", "actor", "channel", "action"]
    assert len(rows) == 1 + 20
    assert {row[10] for row in rows[1:]} == {package.display_name}


def test_the_audit_filters_find_the_events_of_one_user_and_one_request(
    client, admin_user, busy_catalog
):
    event = AuditEvent.objects.select_related("target").first()
    client.force_login(admin_user)
    changelist = admin_url(AuditEvent, "changelist")

    by_user = client.get(changelist, {"user": event.target.email})
    by_request = client.get(changelist, {"request": str(event.request_id)})

    assert list(by_user.context["cl"].result_list) == [event]
    assert list(by_request.context["cl"].result_list) == [event]


def test_the_csv_action_exports_the_selected_events(client, admin_user, busy_catalog):
    events = list(AuditEvent.objects.all()[:3])
    client.force_login(admin_user)

    response = client.post(
        admin_url(AuditEvent, "changelist"),
        {"action": "export_csv", admin.helpers.ACTION_CHECKBOX_NAME: [e.pk for e in events]},
    )

    rows = _csv_rows(response)
    assert sorted(row[5] for row in rows[1:]) == sorted(e.object_id for e in events)


def test_the_csv_export_neutralises_cells_a_spreadsheet_would_run(client, admin_user, db):
    AuditEvent.objects.create(action="x", object_type="t", object_id="1", reason="=HYPERLINK(1)")
    client.force_login(admin_user)

    rows = _csv_rows(client.get(reverse("admin:entitlements_auditevent_export")))

    assert rows[1][8] == "'=HYPERLINK(1)"


def test_the_built_in_general_catalog_cannot_be_deleted(client, admin_user):
    general = Catalog.objects.get(display_name=Catalog.GENERAL)
    client.force_login(admin_user)

    response = client.post(admin_url(Catalog, "delete", general.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Catalog.objects.filter(pk=general.pk).exists()


def test_a_package_page_links_to_its_policies(client, admin_user):
    policy = PolicyFactory(access_package=AccessPackageFactory())
    client.force_login(admin_user)

    response = client.get(
        admin_url(type(policy.access_package), "change", policy.access_package.pk)
    )

    assert admin_url(type(policy), "change", policy.pk) in response.content.decode()


# --------------------------------------------------------------------------------------
# Directory
# --------------------------------------------------------------------------------------


def test_a_superuser_adds_a_person_who_signs_in_with_their_email(client, admin_user):
    from directory.models import User

    client.force_login(admin_user)
    url = reverse("admin:directory_user_add")
    data = page_data(client.get(url))
    data.update(
        email="New.Person@Example.com",
        display_name="New Person",
        usable_password="true",
        password1="a long enough passphrase 42",
        password2="a long enough passphrase 42",
    )

    response = client.post(url, data)

    assert response.status_code == 302
    person = User.objects.get(email="new.person@example.com")
    assert person.check_password("a long enough passphrase 42")
    password_page = reverse("admin:auth_user_password_change", args=[person.pk])
    assert client.get(password_page).status_code == 200


def test_it_refuses_a_connected_organization_domain_that_is_not_a_domain(client, admin_user):
    from directory.models import ConnectedOrganization

    client.force_login(admin_user)
    url = admin_url(ConnectedOrganization, "add")
    data = page_data(client.get(url))
    data.update(display_name="Contoso", domains="contoso.com, not a domain!", state="configured")

    response = client.post(url, data)

    assert "domains" in response.context["adminform"].form.errors
    assert not ConnectedOrganization.objects.exists()
    data.update(domains="Contoso.com fabrikam.com")
    accepted = client.post(url, data)
    assert accepted.status_code == 302, accepted.context["adminform"].form.errors
    assert ConnectedOrganization.objects.get().domains == ["contoso.com", "fabrikam.com"]
