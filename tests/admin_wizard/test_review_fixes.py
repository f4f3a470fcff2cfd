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
