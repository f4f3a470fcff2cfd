"""Provisioning clients in the admin: made with a token shown once, revoked, given a new
token; superusers only."""

import re

import pytest

from entitlements.models import AuditEvent
from scim.models import ProvisioningClient
from scim.tokens import client_for_token, digest
from tests.scim.conftest import Scim

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/scim/provisioningclient/"


def _token_on(response):
    return re.search(r'id="scim-token"[^>]*value="(ems_[^"]+)"', response.content.decode())[1]


def test_adding_a_client_shows_its_token_once_and_keeps_only_its_hash(client, admin_user):
    client.force_login(admin_user)
    response = client.post(CHANGELIST + "add/", {"name": "Okta"})
    assert response.status_code == 200
    token = _token_on(response)
    stored = ProvisioningClient.objects.get(name="Okta")
    assert stored.token_hash == digest(token)
    assert token not in client.get(CHANGELIST + f"{stored.pk}/change/").content.decode()
    assert client_for_token(token) == stored
    assert AuditEvent.objects.filter(action="provisioningClient.created", actor=admin_user).exists()


def test_a_new_token_replaces_the_old_one(client, admin_user, provisioning):
    provisioning_client, old = provisioning
    client.force_login(admin_user)
    rotate = CHANGELIST + f"{provisioning_client.pk}/rotate/"
    assert client.get(rotate).status_code == 200
    new = _token_on(client.post(rotate))
    assert client_for_token(old) is None
    assert client_for_token(new) == provisioning_client


def test_revoking_a_client_refuses_its_token_at_the_next_request(client, admin_user, provisioning):
    provisioning_client, token = provisioning
    scim = Scim(client, token)
    assert scim.get("Users")[0] == 200
    client.force_login(admin_user)
    response = client.post(
        CHANGELIST, {"action": "revoke", "_selected_action": [str(provisioning_client.pk)]}
    )
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    client.logout()
    assert scim.get("Users")[0] == 401
    assert AuditEvent.objects.filter(action="provisioningClient.revoked").count() == 1


@pytest.mark.parametrize("url", [CHANGELIST, CHANGELIST + "add/"])
def test_staff_who_are_not_superusers_cannot_reach_provisioning_clients(client, catalog_owner, url):
    client.force_login(catalog_owner)
    assert client.get(url).status_code == 403


def test_staff_who_are_not_superusers_cannot_make_a_new_token(client, catalog_owner, provisioning):
    client.force_login(catalog_owner)
    response = client.post(CHANGELIST + f"{provisioning[0].pk}/rotate/")
    assert response.status_code == 403
    assert client_for_token(provisioning[1]) == provisioning[0]


def test_a_superuser_lets_a_client_match_existing_people_audited(client, admin_user, provisioning):
    provisioning_client = provisioning[0]
    assert not provisioning_client.match_existing
    client.force_login(admin_user)
    change = CHANGELIST + f"{provisioning_client.pk}/change/"
    assert "Take over people and groups" in client.get(change).content.decode()
    response = client.post(change, {"match_existing": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    provisioning_client.refresh_from_db()
    assert provisioning_client.match_existing
    event = AuditEvent.objects.get(action="provisioningClient.changed", actor=admin_user)
    assert (event.before, event.after) == ("false", "true")


def test_staff_who_are_not_superusers_cannot_let_a_client_match(
    client, catalog_owner, provisioning
):
    client.force_login(catalog_owner)
    change = CHANGELIST + f"{provisioning[0].pk}/change/"
    assert client.post(change, {"match_existing": "on"}).status_code == 403
    provisioning[0].refresh_from_db()
    assert not provisioning[0].match_existing


def test_a_client_added_in_the_admin_does_not_match_unless_asked(client, admin_user):
    client.force_login(admin_user)
    client.post(CHANGELIST + "add/", {"name": "Okta"})
    client.post(CHANGELIST + "add/", {"name": "JumpCloud", "match_existing": "on"})
    assert dict(ProvisioningClient.objects.values_list("name", "match_existing")) == {
        "Okta": False,
        "JumpCloud": True,
    }
