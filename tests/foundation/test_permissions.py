"""The product's admin roles decide what each person sees and changes in the admin."""

import json

import pytest
from django.urls import reverse

from entitlements import permissions
from entitlements.models import (
    AccessPackage,
    AdminRole,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
    Resource,
    RoleAssignment,
)
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
)
from tests.foundation.admin_support import admin_url, give_role, page_data

OWNER = AdminRole.CATALOG_OWNER
READER = AdminRole.CATALOG_READER
PACKAGE_MANAGER = AdminRole.ACCESS_PACKAGE_MANAGER
ASSIGNMENT_MANAGER = AdminRole.ACCESS_PACKAGE_ASSIGNMENT_MANAGER


@pytest.fixture
def mine(db):
    return CatalogFactory(display_name="Mine")


@pytest.fixture
def theirs(db):
    return CatalogFactory(display_name="Theirs")


@pytest.fixture
def holder(db):
    """A person who is not staff; tests give them one role."""
    return UserFactory(display_name="Hal Holder")


def _package_in(catalog, name):
    return AccessPackageFactory(catalog=catalog, display_name=name)


# --------------------------------------------------------------------------------------
# The permission functions
# --------------------------------------------------------------------------------------


def test_catalogs_for_lists_only_the_catalogs_where_the_person_holds_the_role(holder, mine, theirs):
    give_role(holder, OWNER, mine)
    give_role(holder, READER, theirs)

    assert set(permissions.catalogs_for(holder, OWNER)) == {mine}
    assert set(permissions.catalogs_for(holder)) == {mine, theirs}


def test_a_superuser_may_do_everything_in_every_catalog(admin_user, theirs):
    assert set(permissions.catalogs_for(admin_user)) == set(Catalog.objects.all())
    assert permissions.can_change_catalog(admin_user, theirs)
    assert permissions.can_create_catalog(admin_user)


def test_each_role_answers_its_own_questions(holder, mine):
    expected = {
        OWNER: (True, True, True, True),
        READER: (True, False, False, False),
        PACKAGE_MANAGER: (True, False, True, True),
        ASSIGNMENT_MANAGER: (True, False, False, True),
    }
    for role, answers in expected.items():
        RoleAssignment.objects.filter(principal=holder).delete()
        give_role(holder, role, mine)
        permissions.forget_roles(holder)
        got = (
            permissions.can_view_catalog(holder, mine),
            permissions.can_change_catalog(holder, mine),
            permissions.can_manage_packages(holder, mine),
            permissions.can_manage_assignments(holder, mine),
        )
        assert got == answers, role


def test_a_role_delivered_by_an_access_package_counts_like_a_direct_one(holder, mine):
    give_role(holder, OWNER, mine, source=RoleAssignment.Source.ENTITLEMENT)

    assert permissions.can_change_catalog(holder, mine)
    assert permissions.may_enter_admin(holder)


def test_a_disabled_account_holds_no_role(holder, mine):
    give_role(holder, OWNER, mine)
    holder.is_active = False

    assert not permissions.may_enter_admin(holder)
    assert not permissions.can_view_catalog(holder, mine)


def test_only_a_catalog_creator_may_create_catalogs(holder, outsider, mine):
    give_role(holder, AdminRole.CATALOG_CREATOR)
    give_role(outsider, OWNER, mine)

    assert permissions.can_create_catalog(holder)
    assert not permissions.can_create_catalog(outsider)


# --------------------------------------------------------------------------------------
# In the admin
# --------------------------------------------------------------------------------------


def test_a_catalog_owner_sees_only_their_catalogs_packages(client, holder, mine, theirs):
    give_role(holder, OWNER, mine)
    _package_in(mine, "Our package")
    _package_in(theirs, "Their package")
    client.force_login(holder)

    response = client.get(admin_url(AccessPackage, "changelist"))

    assert [p.display_name for p in response.context["cl"].result_list] == ["Our package"]


def test_a_catalog_owner_cannot_open_another_catalogs_package(client, holder, mine, theirs):
    give_role(holder, OWNER, mine)
    package = _package_in(theirs, "Their package")
    client.force_login(holder)

    response = client.get(admin_url(AccessPackage, "change", package.pk))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_a_catalog_owner_cannot_open_another_catalogs_policy(client, holder, mine, theirs):
    give_role(holder, OWNER, mine)
    policy = PolicyFactory(access_package=_package_in(theirs, "Their package"))
    client.force_login(holder)

    assert client.get(admin_url(AssignmentPolicy, "change", policy.pk)).status_code == 302


def test_a_catalog_owner_cannot_put_a_package_in_another_catalog(client, holder, mine, theirs):
    give_role(holder, OWNER, mine)
    client.force_login(holder)
    data = page_data(client.get(admin_url(AccessPackage, "add")))
    data.update(catalog=theirs.pk, display_name="Sneaky")

    response = client.post(admin_url(AccessPackage, "add"), data)

    assert "catalog" in response.context["adminform"].form.errors
    assert not AccessPackage.objects.filter(display_name="Sneaky").exists()


def test_the_catalog_autocomplete_offers_an_owner_only_their_catalogs(client, holder, mine, theirs):
    give_role(holder, OWNER, mine)
    give_role(holder, READER, theirs)
    client.force_login(holder)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "entitlements", "model_name": "accesspackage", "field_name": "catalog"},
    )

    assert [r["text"] for r in json.loads(response.content)["results"]] == ["Mine"]


def test_a_catalog_reader_sees_the_package_but_cannot_change_it(client, holder, mine):
    give_role(holder, READER, mine)
    package = _package_in(mine, "Read me")
    client.force_login(holder)
    url = admin_url(AccessPackage, "change", package.pk)

    page = client.get(url)
    response = client.post(url, {"catalog": mine.pk, "display_name": "Changed"})

    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert response.status_code == 403
    package.refresh_from_db()
    assert package.display_name == "Read me"


def test_a_catalog_reader_cannot_add_a_package(client, holder, mine):
    give_role(holder, READER, mine)
    client.force_login(holder)

    assert client.get(admin_url(AccessPackage, "add")).status_code == 403


def test_an_access_package_manager_edits_packages_but_not_the_catalog(client, holder, mine):
    give_role(holder, PACKAGE_MANAGER, mine)
    package = _package_in(mine, "Managed")
    client.force_login(holder)

    package_page = client.get(admin_url(AccessPackage, "change", package.pk))
    catalog_page = client.get(admin_url(Catalog, "change", mine.pk))

    assert package_page.context["has_change_permission"]
    assert not catalog_page.context["has_change_permission"]


def test_an_assignment_manager_sees_the_catalogs_requests_and_assignments_only(
    client, holder, mine, theirs
):
    give_role(holder, ASSIGNMENT_MANAGER, mine)
    ours = PolicyFactory(access_package=_package_in(mine, "Ours"))
    other = PolicyFactory(access_package=_package_in(theirs, "Other"))
    for policy in (ours, other):
        target = UserFactory()
        Assignment.objects.create(
            access_package=policy.access_package, assignment_policy=policy, target=target
        )
        AssignmentRequest.objects.create(
            access_package=policy.access_package,
            assignment_policy=policy,
            target=target,
            request_type="adminAdd",
        )
    client.force_login(holder)

    requests = client.get(admin_url(AssignmentRequest, "changelist")).context["cl"].result_list
    assignments = client.get(admin_url(Assignment, "changelist")).context["cl"].result_list

    assert [r.access_package.display_name for r in requests] == ["Ours"]
    assert [a.access_package.display_name for a in assignments] == ["Ours"]
    assert client.get(admin_url(AccessPackage, "add")).status_code == 403


def test_a_catalog_creator_adds_a_catalog_and_becomes_its_owner(client, holder):
    give_role(holder, AdminRole.CATALOG_CREATOR)
    client.force_login(holder)
    data = page_data(client.get(admin_url(Catalog, "add")))
    data.update(display_name="Research", state="published")

    response = client.post(admin_url(Catalog, "add"), data)

    assert response.status_code == 302
    catalog = Catalog.objects.get(display_name="Research")
    assert RoleAssignment.objects.filter(principal=holder, role=OWNER, catalog=catalog).exists()
    assert client.get(admin_url(Catalog, "change", catalog.pk)).context["has_change_permission"]


def test_a_catalog_owner_cannot_add_a_catalog(client, holder, mine):
    give_role(holder, OWNER, mine)
    client.force_login(holder)

    assert client.get(admin_url(Catalog, "add")).status_code == 403


def test_only_a_superuser_may_make_someone_a_catalog_creator(client, holder, mine, outsider):
    give_role(holder, OWNER, mine)
    client.force_login(holder)
    data = page_data(client.get(admin_url(RoleAssignment, "add")))
    data.update(principal=outsider.pk, role=AdminRole.CATALOG_CREATOR)

    response = client.post(admin_url(RoleAssignment, "add"), data)

    assert "role" in response.context["adminform"].form.errors
    assert not RoleAssignment.objects.filter(principal=outsider).exists()


def test_a_role_delivered_by_an_access_package_cannot_be_edited_by_hand(client, admin_user, mine):
    delivered = give_role(UserFactory(), READER, mine, source=RoleAssignment.Source.ENTITLEMENT)
    client.force_login(admin_user)

    response = client.post(admin_url(RoleAssignment, "delete", delivered.pk), {"post": "yes"})

    assert response.status_code == 403
    assert RoleAssignment.objects.filter(pk=delivered.pk).exists()


def test_a_catalog_owner_adds_resources_only_to_their_catalogs(client, holder, mine, theirs):
    from tests.factories import GroupFactory

    give_role(holder, OWNER, mine)
    give_role(holder, READER, theirs)
    group = GroupFactory()
    client.force_login(holder)
    data = page_data(client.get(admin_url(Resource, "add")))
    data.update(catalog=theirs.pk, origin_system="AadGroup", group=group.pk)

    response = client.post(admin_url(Resource, "add"), data)

    assert "catalog" in response.context["adminform"].form.errors
    assert not Resource.objects.filter(group=group).exists()


def test_the_role_picker_of_a_package_offers_only_roles_of_its_catalog(
    client, holder, mine, theirs
):
    give_role(holder, OWNER, mine)
    give_role(holder, OWNER, theirs)
    GroupResourceFactory(catalog=mine, group__display_name="Ours")
    GroupResourceFactory(catalog=theirs, group__display_name="Other")
    client.force_login(holder)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "entitlements",
            "model_name": "resourcerolescope",
            "field_name": "role",
            "catalog": str(mine.pk),
        },
    )

    texts = [r["text"] for r in json.loads(response.content)["results"]]
    assert texts == ["Member of Ours", "Owner of Ours"]


def test_people_are_looked_up_by_any_role_holder_but_changed_only_with_django_permissions(
    client, holder, mine, outsider
):
    give_role(holder, READER, mine)
    client.force_login(holder)
    url = admin_url(type(outsider), "change", outsider.pk)

    assert client.get(url).status_code == 200
    assert client.post(url, {"email": "x@example.com"}).status_code == 403
    outsider.refresh_from_db()
    assert outsider.email == "outsider@example.com"


@pytest.mark.parametrize("role", [OWNER, READER, PACKAGE_MANAGER, ASSIGNMENT_MANAGER])
def test_every_page_of_a_catalogs_configuration_opens_for_each_role(client, holder, mine, role):
    from entitlements.models import ApprovalStage, Question
    from tests.factories import ApprovalStageFactory, QuestionFactory, add_approver

    give_role(holder, role, mine)
    resource = GroupResourceFactory(catalog=mine)
    stage = ApprovalStageFactory(policy__access_package__catalog=mine)
    add_approver(stage, user=UserFactory())
    question = QuestionFactory(policy=stage.policy)
    client.force_login(holder)
    objects = [mine, resource, stage.policy.access_package, stage.policy, stage, question]

    for obj in objects:
        assert client.get(admin_url(type(obj), "change", obj.pk)).status_code == 200, obj
    for model in (Catalog, Resource, AccessPackage, AssignmentPolicy, ApprovalStage, Question):
        assert client.get(admin_url(model, "changelist")).status_code == 200, model


def test_the_package_page_asks_the_role_picker_for_the_packages_catalog_only(client, admin_user):
    package = AccessPackageFactory()
    client.force_login(admin_user)

    response = client.get(admin_url(AccessPackage, "change", package.pk))

    assert f"autocomplete/?catalog={package.catalog_id}" in response.content.decode()
