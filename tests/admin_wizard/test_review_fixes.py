"""Fixes from the review of the guided flow: bad input gets a message, never a 500."""

import pytest

from tests.factories import UserFactory

from .conftest import Flow, questions_data, role, stage_data
from .test_flow import basics, lifecycle, requests_

pytestmark = pytest.mark.django_db


def to_requests(flow, catalog, reports_group):
    assert flow.post("basics", basics(catalog)).status_code == 302
    assert flow.post("roles", {"roles": [str(role(reports_group).pk)]}).status_code == 302


@pytest.mark.parametrize(
    "key", ["users", "groups", "organizations", "stage1-users", "stage1-groups"]
)
def test_a_people_field_with_a_value_that_is_not_an_id_is_refused_on_the_field(
    client, catalog_owner, catalog, reports_group, approver, key
):
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    data = requests_(approver, allowed_target_scope="specificDirectoryUsers")
    data[key] = ["zzz", str(approver.pk)] if key.endswith("users") else "zzz"
    response = flow.post("requests", data)
    assert response.status_code == 200
    assert "“zzz” is not a valid" in response.content.decode()


def test_a_reviewer_field_with_a_value_that_is_not_an_id_is_refused_on_the_field(
    client, catalog_owner, catalog, reports_group, approver
):
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    assert flow.post("requests", requests_(approver)).status_code == 302
    assert flow.post("questions", questions_data()).status_code == 302
    for key in ("reviewer_users", "reviewer_groups", "fallback_reviewers"):
        response = flow.post(
            "lifecycle",
            lifecycle(review_is_enabled="on", review_start_date="2027-01-04", **{key: "zzz"}),
        )
        assert response.status_code == 200, key
        assert "“zzz” is not a valid" in response.content.decode()


@pytest.mark.parametrize("total", ["abc", "-5", ""])
def test_adding_a_question_with_a_broken_form_count_is_not_a_500(
    client, catalog_owner, catalog, reports_group, approver, total
):
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    flow.post("requests", requests_(approver))
    data = {**questions_data({"text": "Why?"}), "questions-TOTAL_FORMS": total}
    response = flow.post("questions", data, button="_more")
    assert response.status_code == 200
    response = flow.post("questions", data)
    assert response.status_code in (200, 302)  # refused, or no question at all; never a 500


def test_emails_are_matched_whatever_the_case_they_were_stored_in(
    client, catalog_owner, catalog, reports_group, approver
):
    UserFactory(email="Mixed.Case@Example.com", display_name="Mia Mixed")
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    data = requests_(approver)
    del data["stage1-users"]
    data.update(stage_data(1, users_emails="mixed.case@example.COM"))
    assert flow.post("requests", data).status_code == 302
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle())
    assert "Approved by Mia Mixed" in flow.get("review").content.decode()


def to_lifecycle(client, catalog_owner, catalog, reports_group, approver):
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    assert flow.post("requests", requests_(approver)).status_code == 302
    assert flow.post("questions", questions_data()).status_code == 302
    return flow


def test_access_cannot_end_in_the_past(client, catalog_owner, catalog, reports_group, approver):
    flow = to_lifecycle(client, catalog_owner, catalog, reports_group, approver)
    response = flow.post(
        "lifecycle",
        lifecycle(expiration_type="afterDateTime", expiration_end_datetime="2000-01-01T00:00"),
    )
    assert response.status_code == 200
    assert "Access would end in the past" in response.content.decode()


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("0001-01-01", "The first review would be in the past"),
        ("2000-01-01", "The first review would be in the past"),
        ("9999-12-31", "The first review is at most 5 years ahead."),
    ],
)
def test_the_first_review_is_within_a_sane_range(
    client, catalog_owner, catalog, reports_group, approver, start, message
):
    flow = to_lifecycle(client, catalog_owner, catalog, reports_group, approver)
    response = flow.post(
        "lifecycle",
        lifecycle(review_is_enabled="on", review_start_date=start, reviewer_users=str(approver.pk)),
    )
    assert response.status_code == 200
    assert message in response.content.decode()


def test_the_date_checks_are_in_policy_check_which_the_api_runs_too(catalog):
    from datetime import UTC, date, datetime

    from entitlements.models import AccessPackage, AssignmentPolicy
    from entitlements.policy_config import PolicyInvalid, policy_check

    package = AccessPackage.objects.create(catalog=catalog, display_name="Dates")
    policy = AssignmentPolicy(
        access_package=package,
        display_name="Old",
        allowed_target_scope="allMemberUsers",
        expiration_type="afterDateTime",
        expiration_end_datetime=datetime(2000, 1, 1, tzinfo=UTC),
        review_is_enabled=True,
        review_is_self_review=True,
        review_start_date=date(1, 1, 1),
    )
    with pytest.raises(PolicyInvalid) as caught:
        policy_check(policy, subject_sets=[], stages=[], questions=[])
    assert {"expiration_end_datetime", "review_start_date"} <= set(caught.value.message_dict)


def test_the_review_says_everything_in_words(
    client, catalog_owner, catalog, reports_group, approver
):
    fallback = UserFactory(email="fay@example.com", display_name="Fay Fallback")
    named = UserFactory(email="ned@example.com", display_name="Ned Named")
    client.force_login(catalog_owner)
    flow = Flow(client)
    to_requests(flow, catalog, reports_group)
    data = requests_(
        approver,
        description="For the finance team.",
        users=str(named.pk),  # scope stays "All members": the name is not kept
        **stage_data(1, fallback_users=str(fallback.pk), is_approver_justification_required="on"),
    )
    assert flow.post("requests", data).status_code == 302
    questions = questions_data({"text": "Why?", "is_single_line_question": ""})
    assert flow.post("questions", questions).status_code == 302
    assert (
        flow.post(
            "lifecycle",
            lifecycle(
                enable_targets_to_self_update_access="on", is_approval_required_for_update="on"
            ),
        ).status_code
        == 302
    )
    text = flow.get("review").content.decode()
    assert "For the finance team." in text
    assert "Fallback approvers: Fay Fallback." in text
    assert "The approver must give a justification." in text
    assert "Why? (text, several lines; optional)" in text
    assert "approval is required for an extension" in text
    assert "Access lasts 90 days." in text
    assert "Ned Named" not in text
    assert "All members (excluding guests)." in text
    flow.post("review", {}, button="_create")
    from entitlements.models import AssignmentPolicy

    policy = AssignmentPolicy.objects.get()
    assert not policy.subject_sets.filter(purpose="allowedTarget").exists()


def test_a_second_create_of_the_same_draft_is_refused_and_shows_what_was_made(
    client, catalog_owner, catalog, reports_group, approver
):
    from django.core.cache import cache
    from django.urls import reverse

    from entitlements.models import AccessPackage

    flow = to_lifecycle(client, catalog_owner, catalog, reports_group, approver)
    assert flow.post("lifecycle", lifecycle()).status_code == 302
    first = flow.post("review", {}, button="_create")
    package = AccessPackage.objects.get()
    second = flow.post("review", {}, button="_create")
    change = reverse("admin:entitlements_accesspackage_change", args=[package.pk])
    assert first["Location"] == second["Location"] == change
    assert AccessPackage.objects.count() == 1

    # A Create arriving while the first is still saving (its claim taken, nothing made yet)
    # is refused and creates nothing.
    other = to_lifecycle(client, catalog_owner, catalog, reports_group, approver)
    assert other.post("lifecycle", lifecycle()).status_code == 302
    cache.add(f"package_wizard:{catalog_owner.pk}:{other.draft}", "", timeout=60)
    response = other.post("review", {}, button="_create")
    assert response.status_code == 302
    assert AccessPackage.objects.count() == 1


def test_a_conflict_at_create_is_said_on_the_review_and_nothing_is_saved(
    client, catalog_owner, catalog, reports_group, approver, monkeypatch
):
    from django.db import IntegrityError

    from entitlements.admin import wizard
    from entitlements.models import AccessPackage

    def conflict(**kwargs):
        raise IntegrityError("duplicate key")

    flow = to_lifecycle(client, catalog_owner, catalog, reports_group, approver)
    assert flow.post("lifecycle", lifecycle()).status_code == 302
    monkeypatch.setattr(wizard, "policy_save", conflict)
    response = flow.post("review", {}, button="_create")
    assert response.status_code == 200
    assert "Nothing was created" in response.content.decode()
    assert not AccessPackage.objects.exists()
    monkeypatch.undo()
    assert flow.post("review", {}, button="_create").status_code == 302  # claim released
    assert AccessPackage.objects.count() == 1


def test_only_the_fields_of_a_step_are_kept_in_the_session(
    client, catalog_owner, catalog, reports_group
):
    client.force_login(catalog_owner)
    flow = Flow(client)
    flow.post("basics", {**basics(catalog), "junk": "x" * 1000, "is_superuser": "on"})
    drafts = client.session["package_wizard"]
    kept = drafts[flow.draft]["data"]["basics"]
    assert set(kept) == {"display_name", "description", "catalog"}


def test_an_unknown_package_is_answered_as_one_in_another_catalog(
    client, catalog_owner, catalog, other_catalog
):
    import uuid

    from django.urls import reverse

    from entitlements.models import AccessPackage

    client.force_login(catalog_owner)
    foreign = AccessPackage.objects.create(catalog=other_catalog, display_name="Theirs")
    url = "admin:entitlements_accesspackage_wizard_policy"
    unknown = client.get(reverse(url, args=[uuid.uuid4()]))
    theirs = client.get(reverse(url, args=[foreign.pk]))
    assert unknown.status_code == theirs.status_code == 403  # existence is not told
