"""The package page shows its My Access link; saving a stage or question returns to its policy."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from entitlements.models import AccessPackage, AdminRole, ApprovalStage, Question
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
)
from tests.foundation.admin_support import add_row, admin_url, errors_of, give_role, page_data

pytestmark = pytest.mark.django_db


def test_a_hidden_packages_page_shows_the_link_to_share_and_a_copy_button(client, admin_user):
    package = AccessPackageFactory(is_hidden=True)
    client.force_login(admin_user)

    html = client.get(admin_url(AccessPackage, "change", package.pk)).content.decode()

    link = settings.SITE_URL + reverse("myaccess:package", args=[package.pk])
    assert f'<a class="myaccess-link" href="{link}">{link}</a>' in html
    assert f'data-copy="{link}" hidden' in html  # shown by copy_link.js where it can copy
    assert "only through this link" in html
    assert "js/copy_link.js" in html


def test_the_link_is_not_offered_before_the_package_exists(client, admin_user):
    client.force_login(admin_user)

    html = client.get(admin_url(AccessPackage, "add")).content.decode()

    assert "myaccess-link" not in html


def test_a_catalog_reader_sees_the_link_and_someone_from_another_catalog_is_refused(client):
    package = AccessPackageFactory(is_hidden=True)
    reader = UserFactory(is_staff=False)
    give_role(reader, AdminRole.CATALOG_READER, package.catalog)
    stranger = UserFactory(is_staff=False)
    give_role(stranger, AdminRole.CATALOG_OWNER, CatalogFactory())
    url = admin_url(AccessPackage, "change", package.pk)

    client.force_login(reader)
    assert "myaccess-link" in client.get(url).content.decode()

    client.force_login(stranger)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_saving_a_stage_returns_to_its_policy(client, admin_user, stage):
    client.force_login(admin_user)
    url = admin_url(ApprovalStage, "change", stage.pk)
    data = page_data(client.get(url))
    data["duration_before_automatic_denial"] = "7 days"

    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert response["Location"] == reverse(
        "admin:entitlements_assignmentpolicy_change", args=[stage.policy_id]
    )
    stage.refresh_from_db()
    assert stage.duration_before_automatic_denial == timedelta(days=7)


def test_adding_a_stage_from_the_policy_returns_to_the_policy(client, admin_user, policy, approver):
    client.force_login(admin_user)
    url = admin_url(ApprovalStage, "add") + f"?policy={policy.pk}&sequence=1"
    data = page_data(client.get(url))
    data["duration_before_automatic_denial"] = "14 days"
    add_row(
        data, "approver_sets", purpose="primaryApprover", subject_type="singleUser", user=approver
    )

    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert response["Location"] == reverse(
        "admin:entitlements_assignmentpolicy_change", args=[policy.pk]
    )
    assert policy.approval_stages.get().duration_before_automatic_denial == timedelta(days=14)


def test_save_and_continue_editing_stays_on_the_stage(client, admin_user, stage):
    client.force_login(admin_user)
    url = admin_url(ApprovalStage, "change", stage.pk)
    data = page_data(client.get(url))
    data["_continue"] = "Save and continue editing"

    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert response["Location"] == url


def test_saving_a_question_returns_to_its_policy(client, admin_user, policy):
    question = QuestionFactory(policy=policy)
    client.force_login(admin_user)
    url = admin_url(Question, "change", question.pk)
    data = page_data(client.get(url))
    data["text"] = "Which project is it for?"

    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert response["Location"] == reverse(
        "admin:entitlements_assignmentpolicy_change", args=[policy.pk]
    )


def test_a_stage_whose_escalation_goes_to_the_second_level_manager_opens(client, admin_user, stage):
    add_approver(
        stage, purpose="escalationApprover", subject_type="requestorManager", manager_level=2
    )
    client.force_login(admin_user)

    response = client.get(admin_url(ApprovalStage, "change", stage.pk))

    assert response.status_code == 200
    assert "The second-level manager" in response.content.decode()
