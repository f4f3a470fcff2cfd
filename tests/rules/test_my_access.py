"""My Access after an automatic policy stops applying: the removal reads as a removal."""

import pytest
from django.urls import reverse

from directory.models import User
from entitlements.services.automatic import automatic_policies_evaluate, users_reevaluate
from tests.factories import UserFactory
from tests.rules.conftest import automatic_policy

pytestmark = pytest.mark.django_db


def test_the_overview_shows_an_automatic_removal_as_a_removal(client):
    _package, _policy, _resource = automatic_policy('user.department -eq "Engineering"')
    emma = UserFactory(display_name="Emma Evans", department="Engineering")
    automatic_policies_evaluate()
    User.objects.filter(pk=emma.pk).update(department="Sales")
    users_reevaluate(user_ids=[emma.pk])
    client.force_login(emma)

    page = client.get(reverse("myaccess:home")).content.decode()

    recent = page[page.index("recent-title") :]
    assert "Automatic removal" in recent
    assert "Automatic assignment" in recent


def test_someone_elses_overview_does_not_show_her_removal(client, requester):
    _package, _policy, _resource = automatic_policy('user.department -eq "Engineering"')
    emma = UserFactory(department="Engineering")
    automatic_policies_evaluate()
    User.objects.filter(pk=emma.pk).update(department="Sales")
    users_reevaluate(user_ids=[emma.pk])
    client.force_login(requester)

    page = client.get(reverse("myaccess:home")).content.decode()

    assert "Automatic removal" not in page
