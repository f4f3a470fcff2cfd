"""Directory imports in the admin: superusers only, audited saves, the last run shown, a run
queued on request."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from entitlements.models import AuditEvent, ConnectedSystem
from identity import admin_importing
from identity.models import DirectoryImport

pytestmark = pytest.mark.django_db


@pytest.fixture
def ldap_system(db):
    return ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP, name="Head office LDAP", settings={"url": "ldap://ldap:389"}
    )


@pytest.fixture
def directory_import(ldap_system):
    return DirectoryImport.objects.create(
        name="Head office",
        system=ldap_system,
        last_result={"counts": {"created": 12, "updated": 3, "disabled": 1}},
    )


def test_only_superusers_reach_directory_imports_in_the_admin(
    client, admin_user, catalog_owner, directory_import
):
    # A staff member given every permission on the model is still refused: the import reads
    # a connected system's credentials, which are superusers' only.
    catalog_owner.user_permissions.set(
        Permission.objects.filter(content_type__app_label="identity", codename__endswith="import")
    )
    urls = [
        reverse("admin:identity_directoryimport_changelist"),
        reverse("admin:identity_directoryimport_add"),
        reverse("admin:identity_directoryimport_change", args=[directory_import.pk]),
    ]
    client.force_login(catalog_owner)
    assert [client.get(url).status_code for url in urls] == [403, 403, 403]

    client.force_login(admin_user)
    assert [client.get(url).status_code for url in urls] == [200, 200, 200]


def test_someone_not_signed_in_is_sent_to_the_admin_sign_in(client, directory_import):
    url = reverse("admin:identity_directoryimport_changelist")

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_list_shows_each_imports_last_run_in_a_fixed_number_of_queries(
    client, admin_user, ldap_system, django_assert_max_num_queries
):
    for n in range(10):
        DirectoryImport.objects.create(
            name=f"Import {n}", system=ldap_system, last_result={"counts": {"created": n}}
        )
    client.force_login(admin_user)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:identity_directoryimport_changelist"))

    assert "9 created, 0 updated, 0 disabled" in response.content.decode()


def test_an_import_added_in_the_admin_is_audited(client, admin_user, ldap_system):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:identity_directoryimport_add"),
        {
            "name": "Branch",
            "system": ldap_system.pk,
            "flavor": DirectoryImport.Flavor.ACTIVE_DIRECTORY,
            "enabled": "on",
            "interval": "01:00:00",
            "attribute_map": '{"department": "physicalDeliveryOfficeName"}',
            "disable_missing": "on",
            "disable_limit": "500",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    directory_import = DirectoryImport.objects.get(name="Branch")
    assert directory_import.mapping()["department"] == "physicalDeliveryOfficeName"
    event = AuditEvent.objects.get(action="directoryImport.created")
    assert event.actor == admin_user and event.object_id == str(directory_import.pk)


def test_a_mapping_of_a_field_that_cannot_be_imported_is_refused_on_the_form(
    client, admin_user, ldap_system
):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:identity_directoryimport_add"),
        {
            "name": "Branch",
            "system": ldap_system.pk,
            "flavor": DirectoryImport.Flavor.OPENLDAP,
            "interval": "01:00:00",
            "attribute_map": '{"is_superuser": "admin"}',
            "disable_limit": "500",
        },
    )

    assert response.status_code == 200
    assert "is_superuser cannot be imported" in response.content.decode()
    assert not DirectoryImport.objects.exists()


def test_run_now_queues_a_run_of_each_selected_import(
    client, admin_user, directory_import, monkeypatch
):
    sent = []
    monkeypatch.setattr(admin_importing, "enqueue_named", lambda *args: sent.append(args))
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:identity_directoryimport_changelist"),
        {"action": "run_now", "_selected_action": [directory_import.pk]},
        follow=True,
    )

    assert sent == [("identity.tasks.run_directory_import", str(directory_import.pk))]
    assert "A run of Head office was queued" in response.content.decode()
