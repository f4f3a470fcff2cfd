"""My Access lists show a person only their own rows: restrict(user, "own" | "approve")."""

import pytest
from django.urls import reverse

from entitlements.models import Assignment, Channel, RequestState
from entitlements.services.requests import request_cancel

from .conftest import submit

pytestmark = pytest.mark.django_db


def test_another_users_assignment_is_not_listed_in_my_access(
    client, requester, outsider, open_package
):
    submit(requester, open_package)
    assert Assignment.objects.filter(target=requester, access_package=open_package).exists()
    client.force_login(outsider)

    response = client.get(reverse("myaccess:active_assignments"))

    assert response.status_code == 200
    assert open_package.display_name not in response.content.decode()


def test_a_waiting_approval_is_listed_for_its_approver_only(
    client, requester, approver, outsider, approved_package
):
    submit(requester, approved_package)

    for person, listed in ((approver, True), (outsider, False), (requester, False)):
        client.force_login(person)
        response = client.get(reverse("myaccess:approvals"))
        assert (approved_package.display_name in response.content.decode()) == listed, person


def test_the_cancel_button_is_offered_exactly_while_the_request_can_be_canceled(
    client, requester, approved_package
):
    request_obj = submit(requester, approved_package)
    client.force_login(requester)
    url = reverse("myaccess:request_detail", args=[request_obj.pk])
    cancel_url = reverse("myaccess:request_cancel", args=[request_obj.pk])

    assert cancel_url in client.get(url).content.decode()
    request_cancel(actor=requester, request=request_obj, channel=Channel.PORTAL)

    request_obj.refresh_from_db()
    assert request_obj.state == RequestState.CANCELED
    assert cancel_url not in client.get(url).content.decode()
