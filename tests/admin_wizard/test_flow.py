"""The guided "New access package" flow, step by step, as a browser without JavaScript."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from entitlements.models import (
    AccessPackage,
    AssignmentPolicy,
    AuditEvent,
    ResourceRoleScope,
    SubjectType,
)
from tests.factories import GroupFactory, GroupResourceFactory, UserFactory

from .conftest import Flow, questions_data, role, stage_data

pytestmark = pytest.mark.django_db


def basics(catalog, **extra):
    return {
        "display_name": "Finance reporting",
        "description": "Read the monthly reports.",
        "catalog": str(catalog.pk),
        **extra,
    }


def requests_(approver, **extra):
    return {
        "display_name": "Employees",
        "allowed_target_scope": "allMemberUsers",
        "is_approval_required_for_add": "on",
        "is_requestor_justification_required": "on",
        **stage_data(1, duration_before_automatic_denial="7 days", users=str(approver.pk)),
        **extra,
    }


def lifecycle(**extra):
    return {
        "expiration_type": "afterDuration",
        "expiration_duration": "90 days",
        "review_recurrence": "quarterly",
        "review_duration_in_days": "14",
        "review_expiration_behavior": "keepAccess",
        **extra,
    }


@pytest.fixture
def signed_in(client, catalog_owner, catalog):
    client.force_login(catalog_owner)
    return client


def run_to_review(flow, catalog, reports_group, approver):
    assert flow.post("basics", basics(catalog)).status_code == 302
    assert flow.post("roles", {"roles": [str(role(reports_group).pk)]}).status_code == 302
    assert flow.post("requests", requests_(approver)).status_code == 302
    assert (
        flow.post(
            "questions", questions_data({"text": "Which cost centre?", "is_required": "on"})
        ).status_code
        == 302
    )
    response = flow.post(
        "lifecycle",
        lifecycle(
            review_is_enabled="on",
            review_start_date="2027-01-04",
            reviewer_manager="on",
            fallback_reviewers=str(approver.pk),
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == flow.step_url("review")


def test_the_flow_creates_a_package_with_its_roles_and_policy_only_at_the_last_step(
    signed_in, catalog, reports_group, approver, catalog_owner
):
    flow = Flow(signed_in)
    assert flow.url == flow.step_url("basics")
    events = AuditEvent.objects.count()
    run_to_review(flow, catalog, reports_group, approver)
    assert not AccessPackage.objects.exists()
    assert AuditEvent.objects.count() == events

    review = flow.get("review")
    assert review.status_code == 200
    text = review.content.decode()
    assert "Member of Finance reports" in text
    assert "Approved by Arno Approver, who has 7 days to decide." in text
    assert "Access lasts 90 days." in text
    assert "Which cost centre?" in text

    response = flow.post("review", {}, button="_create")
    package = AccessPackage.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:entitlements_accesspackage_change", args=[package.pk]
    )
    assert package.catalog == catalog
    assert package.display_name == "Finance reporting"
    assert [s.role for s in ResourceRoleScope.objects.filter(access_package=package)] == [
        role(reports_group)
    ]
    policy = AssignmentPolicy.objects.get(access_package=package)
    assert policy.display_name == "Employees"
    assert policy.expiration_duration == timedelta(days=90)
    stage = policy.approval_stages.get()
    assert stage.duration_before_automatic_denial == timedelta(days=7)
    assert [a.user for a in stage.approver_sets.all()] == [approver]
    assert [q.text for q in policy.questions.all()] == ["Which cost centre?"]
    assert policy.review_is_enabled
    assert {(s.purpose, s.subject_type) for s in policy.subject_sets.all()} == {
        ("primaryReviewer", SubjectType.TARGET_MANAGER),
        ("fallbackReviewer", SubjectType.SINGLE_USER),
    }
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"accessPackage.created", "accessPackage.roleAdded", "assignmentPolicy.created"} <= (
        actions
    )
    assert AuditEvent.objects.filter(actor=catalog_owner).count() == AuditEvent.objects.count()
    # The draft is gone: the same URL starts a new flow.
    assert flow.get("review").status_code == 302


def test_a_step_with_a_mistake_shows_it_on_the_field_and_does_not_go_on(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    response = flow.post("basics", {"display_name": "", "catalog": str(catalog.pk)})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert 'class="errornote"' in response.content.decode()
    # A later step cannot be reached before the earlier ones are right.
    assert flow.get("requests")["Location"] == flow.step_url("basics")

    flow.post("basics", basics(catalog))
    response = flow.post("roles", {})
    assert "Choose at least one resource role for the package to grant." in (
        response.content.decode()
    )
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    # Approval required, no stage: the services' own check, on this step.
    response = flow.post(
        "requests",
        {
            "display_name": "Employees",
            "allowed_target_scope": "allMemberUsers",
            "is_approval_required_for_add": "on",
        },
    )
    assert response.status_code == 200
    assert "Approval is required, but no approval stage is given" in response.content.decode()
    # Specific users, nobody named.
    response = flow.post(
        "requests", {"display_name": "E", "allowed_target_scope": "specificDirectoryUsers"}
    )
    assert "add at least one subject with purpose" in response.content.decode()
    assert not AccessPackage.objects.exists()


def test_durations_are_typed_in_words_and_refused_clearly(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    flow.post("requests", requests_(approver))
    flow.post("questions", questions_data())
    response = flow.post("lifecycle", lifecycle(expiration_duration="soon"))
    assert response.status_code == 200
    assert "Enter a duration such as" in response.content.decode()
    response = flow.post("lifecycle", lifecycle(expiration_duration="2 weeks"))
    assert response.status_code == 302


def test_reviews_without_reviewers_are_refused_on_the_lifecycle_step(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    flow.post("requests", requests_(approver))
    flow.post("questions", questions_data())
    response = flow.post(
        "lifecycle", lifecycle(review_is_enabled="on", review_start_date="2027-01-04")
    )
    assert response.status_code == 200
    assert "Access reviews are on but nobody reviews" in response.content.decode()


def test_back_keeps_what_was_typed(signed_in, catalog, reports_group, approver):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    response = flow.post("roles", {"roles": [str(role(reports_group).pk)]}, button="_back")
    assert response["Location"] == flow.step_url("basics")
    page = flow.get("basics").content.decode()
    assert 'value="Finance reporting"' in page
    page = flow.get("roles").content.decode()
    assert f'value="{role(reports_group).pk}" checked' in page


def test_the_role_search_matches_what_the_list_shows_and_keeps_the_choice(
    signed_in, catalog, reports_group, ledger_group
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    chosen = role(ledger_group, "Owner")
    response = flow.post(
        "roles", {"roles": [str(chosen.pk)], "q": "member of finance"}, button="_search"
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Member of Finance reports (Group)" in page
    assert "Owner of Finance reports" not in page
    assert "Ledger" not in page.split('id="wizard-roles"')[1].split("</ul>")[0]
    # The chosen role, not listed now, stays chosen.
    assert f'<input type="hidden" name="roles" value="{chosen.pk}">' in page
    assert "1 chosen role is not in this list and stays chosen." in page
    # Searching before choosing anything is not a mistake.
    response = flow.post("roles", {"q": "ledger"}, button="_search")
    assert "Choose at least one resource role" not in response.content.decode()
    assert "Owner of Ledger (Group)" in response.content.decode()


def test_a_second_question_can_be_added_without_javascript(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    flow.post("requests", requests_(approver))
    response = flow.post("questions", questions_data({"text": "Why?"}), button="_more")
    assert response.status_code == 200
    assert 'name="questions-2-text"' in response.content.decode()
    response = flow.post(
        "questions",
        questions_data(
            {"text": "Which office?", "question_type": "multipleChoice"},
        ),
    )
    assert "is multiple choice but has no choices" in response.content.decode()
    response = flow.post(
        "questions",
        questions_data(
            {
                "text": "Which office?",
                "question_type": "multipleChoice",
                "choices": "Paris\nBerlin",
            },
        ),
    )
    assert response.status_code == 302


def test_the_same_flow_adds_a_policy_to_an_existing_package(
    signed_in, catalog, reports_group, approver
):
    package = AccessPackage.objects.create(catalog=catalog, display_name="Existing")
    flow = Flow(
        signed_in, reverse("admin:entitlements_accesspackage_wizard_policy", args=[package.pk])
    )
    assert flow.url == flow.step_url("requests")
    group = GroupFactory(display_name="Contractors")
    flow.post(
        "requests",
        {
            "display_name": "Contractors",
            "allowed_target_scope": "specificDirectoryUsers",
            "groups": str(group.pk),
        },
    )
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle(expiration_type="noExpiration"))
    review = flow.get("review").content.decode()
    assert "Specific users and groups: Members of Contractors." in review
    assert "No approval needed." in review
    flow.post("review", {}, button="_create")
    policy = AssignmentPolicy.objects.get(access_package=package)
    assert policy.display_name == "Contractors"
    assert [s.group for s in policy.subject_sets.all()] == [group]
    assert not ResourceRoleScope.objects.filter(access_package=package).exists()


def test_the_review_shows_the_validation_warnings(signed_in, catalog, reports_group, approver):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    flow.post(
        "requests",
        {
            "display_name": "Employees",
            "allowed_target_scope": "allMemberUsers",
            "is_approval_required_for_add": "on",
            **stage_data(1, duration_before_automatic_denial="14 days", manager="on"),
        },
    )
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle())
    page = flow.get("review").content.decode()
    assert "Approved by your manager, who has 14 days to decide." in page
    assert "may not exist for every requestor and there is no fallback approver" in page


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_steps_cost_the_same_number_of_queries_for_one_or_many_roles_and_people(
    signed_in, catalog, approver
):
    counts = []
    for size in (1, 8):
        resources = [
            GroupResourceFactory(catalog=catalog, group=GroupFactory(display_name=f"G{size}-{n}"))
            for n in range(size)
        ]
        people = [UserFactory(display_name=f"Approver {size}-{n}") for n in range(size)]
        flow = Flow(signed_in)
        flow.post("basics", basics(catalog))
        flow.post("roles", {"roles": [str(role(r).pk) for r in resources]})
        flow.post(
            "requests",
            requests_(approver, **stage_data(1, users=[str(p.pk) for p in people])),
        )
        flow.post("questions", questions_data(*({"text": f"Q{n}?"} for n in range(size))))
        flow.post(
            "lifecycle",
            lifecycle(
                review_is_enabled="on",
                review_start_date="2027-01-04",
                reviewer_users=[str(p.pk) for p in people],
            ),
        )
        counts.append(
            {
                step: _queries(signed_in, flow.step_url(step))
                for step in ("roles", "requests", "review")
            }
        )
    # The same count, but for policy_check's one look-up of each person named (7 approvers
    # and 7 reviewers more), as the API's checks of a policy do.
    assert counts[1]["roles"] == counts[0]["roles"]
    assert counts[1]["requests"] == counts[0]["requests"]
    assert counts[1]["review"] == counts[0]["review"] + 14
    assert counts[0]["review"] <= 16
    assert counts[0]["roles"] <= 10


def test_stages_are_not_saved_when_no_approval_is_required(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    data = requests_(approver)
    del data["is_approval_required_for_add"]
    flow.post("requests", data)
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle())
    assert "No approval needed." in flow.get("review").content.decode()
    flow.post("review", {}, button="_create")
    policy = AssignmentPolicy.objects.get()
    assert not policy.is_approval_required_for_add
    assert not policy.approval_stages.exists()


def test_people_can_be_named_by_email_where_the_autocomplete_cannot_run(
    signed_in, catalog, reports_group, approver
):
    flow = Flow(signed_in)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    page = flow.get("requests").content.decode()
    data = requests_(approver)
    del data["stage1-users"]
    assert '<noscript><div class="form-row field-users_emails">' in page
    response = flow.post(
        "requests",
        {
            **data,
            "stage1-users_emails": "nobody@example.com, APPROVER@example.com",
        },
    )
    assert response.status_code == 200
    assert "Nobody has the email nobody@example.com." in response.content.decode()
    response = flow.post(
        "requests",
        {**data, "stage1-users_emails": "APPROVER@example.com"},
    )
    assert response.status_code == 302
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle())
    assert "Approved by Arno Approver" in flow.get("review").content.decode()
