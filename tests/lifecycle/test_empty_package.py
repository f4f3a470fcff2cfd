"""A package that grants no resource roles gives nothing: it cannot be requested, and says so."""

import pytest
from django.urls import reverse

from entitlements import selectors
from entitlements.errors import NotEligible
from entitlements.models import AccessPackage, AssignmentRequest
from entitlements.services.requests import request_submit, requests_admin_add
from tests.factories import AccessPackageFactory, PolicyFactory
from tests.foundation.admin_support import admin_url, page_data

pytestmark = pytest.mark.django_db

REASON = (
    "This access package does not grant any resource roles yet, so there is nothing to "
    "request; the catalog's owners can add them."
)


@pytest.fixture
def empty_policy():
    return PolicyFactory(access_package=AccessPackageFactory(display_name="Nothing yet"))


def test_a_package_without_resource_roles_is_not_requestable_and_says_why(requester, empty_policy):
    result = selectors.eligibility(user=requester, access_package=empty_policy.access_package)

    assert not result.can_request
    assert result.reasons == [REASON]


def test_request_submit_refuses_a_package_without_resource_roles(requester, empty_policy):
    with pytest.raises(NotEligible) as refused:
        request_submit(
            actor=requester, target=requester, access_package=empty_policy.access_package
        )

    assert str(refused.value) == REASON
    assert not AssignmentRequest.objects.exists()


def test_a_direct_assignment_of_a_package_without_resource_roles_is_refused_with_the_reason(
    admin_user, requester, empty_policy
):
    result = requests_admin_add(
        actor=admin_user,
        targets=[requester],
        access_package=empty_policy.access_package,
        policy=empty_policy,
    )

    assert result.refused == [(requester, REASON)]
    assert not AssignmentRequest.objects.exists()


def test_my_access_shows_why_a_package_without_resource_roles_cannot_be_requested(
    client, requester, empty_policy
):
    client.force_login(requester)

    response = client.get(reverse("myaccess:package", args=[empty_policy.access_package.pk]))

    assert response.status_code == 200
    assert REASON.replace("'", "&#x27;") in response.content.decode()


def test_the_admin_package_page_warns_that_the_package_grants_nothing(
    client, admin_user, empty_policy
):
    package = empty_policy.access_package
    client.force_login(admin_user)

    page = client.get(admin_url(AccessPackage, "change", package.pk))
    saved = client.post(
        admin_url(AccessPackage, "change", package.pk), page_data(page), follow=True
    )

    warning = "Nothing yet grants no resource roles yet: nobody can request it until you add"
    assert warning in page.content.decode()
    assert any(warning in str(m) for m in saved.context["messages"])


def test_my_access_does_not_list_a_package_without_resource_roles(requester, empty_policy):
    listed = selectors.requestable_packages(user=requester)

    assert empty_policy.access_package not in listed
