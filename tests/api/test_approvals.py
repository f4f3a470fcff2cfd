"""accessPackageAssignmentApprovals: an approver lists and decides their approvals through the
API; everyone else is refused and nothing changes."""

import pytest

from api.permissions import EM_READ, SUBJECT_ACCESS
from approvals.models import RequestApprovalStage, ReviewResult, StageStatus
from entitlements.models import AdminRole, AuditEvent, RequestState, RoleAssignment
from entitlements.services.requests import request_submit
from tests.factories import CatalogFactory, UserFactory
from tests.lifecycle.requests_setup import approval_policy

URL = "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals"
MINE = f"{URL}/filterByCurrentUser(on='approver')"
NOBODY = "00000000-0000-0000-0000-000000000000"

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_approver(db):
    return UserFactory(email="second@example.com", display_name="Sam Second")


@pytest.fixture
def policy(approver, second_approver):
    return approval_policy(approvers=[approver, second_approver], stages=2)


@pytest.fixture
def pending(policy, requester):
    """Rita's request, waiting for stage 1."""
    return request_submit(actor=requester, target=requester, access_package=policy.access_package)


def stage_url(request, sequence=1):
    stage = RequestApprovalStage.objects.get(request=request, sequence=sequence)
    return f"{URL}/{request.pk}/stages/{stage.pk}", stage


def owner_of(catalog, user):
    RoleAssignment.objects.create(catalog=catalog, principal=user, role=AdminRole.CATALOG_OWNER)
    return user


def snapshot(request):
    stages = RequestApprovalStage.objects.filter(request=request).order_by("sequence")
    request.refresh_from_db()
    return (
        request.state,
        [(s.status, s.review_result, s.reviewed_by_id) for s in stages],
        AuditEvent.objects.count(),
    )


def test_an_approver_lists_the_approvals_waiting_for_them_with_their_stages(
    client, approver, pending
):
    client.force_login(approver)

    body = client.get(MINE).json()

    assert body["@odata.context"].endswith("$metadata#" + URL.removeprefix("/v1.0/"))
    [approval] = body["value"]
    assert approval["id"] == str(pending.pk)
    [stage] = approval["stages"]
    assert stage == {
        "id": str(RequestApprovalStage.objects.get(request=pending).pk),
        "displayName": None,
        "reviewedBy": {
            "@odata.type": "#microsoft.graph.userIdentity",
            "id": NOBODY,
            "displayName": "",
        },
        "reviewedDateTime": None,
        "reviewResult": "NotReviewed",
        "justification": "",
        "assignedToMe": True,
        "status": "InProgress",
    }


def test_expand_stages_is_accepted_and_selects_within_them(client, approver, pending):
    client.force_login(approver)

    body = client.get(f"{MINE}?$expand=stages($select=status)").json()

    assert body["value"][0]["stages"] == [
        {"id": str(RequestApprovalStage.objects.get(request=pending).pk), "status": "InProgress"}
    ]


def test_an_approver_approves_a_stage_and_the_next_one_opens(client, approver, pending):
    client.force_login(approver)
    url, stage = stage_url(pending)

    response = client.patch(
        url, {"reviewResult": "Approve", "justification": "Needed"}, content_type="application/json"
    )

    assert response.status_code == 204, response.content
    stage.refresh_from_db()
    assert (stage.status, stage.review_result, stage.reviewed_by) == (
        StageStatus.COMPLETED,
        ReviewResult.APPROVED,
        approver,
    )
    assert (stage.justification, stage.channel) == ("Needed", "api")
    assert AuditEvent.objects.filter(action="stage.approve", channel="api").count() == 1
    body = client.get(f"{URL}/{pending.pk}").json()
    assert [(s["status"], s["reviewResult"]) for s in body["stages"]] == [
        ("Completed", "Approved"),
        ("InProgress", "NotReviewed"),
    ]
    assert body["stages"][0]["reviewedBy"]["displayName"] == approver.display_name
    assert body["stages"][0]["reviewedDateTime"].endswith("Z")
    detail = client.get(url).json()
    assert detail["reviewResult"] == "Approved" and detail["assignedToMe"] is True


def test_a_denial_ends_the_request(client, approver, pending):
    client.force_login(approver)
    url, _ = stage_url(pending)

    response = client.patch(url, {"reviewResult": "Deny"}, content_type="application/json")

    assert response.status_code == 204
    pending.refresh_from_db()
    assert pending.state == RequestState.DENIED


def test_a_stage_already_decided_is_a_conflict_with_the_domain_message(
    client, approver, second_approver, pending
):
    url, _ = stage_url(pending)
    client.force_login(approver)
    assert client.patch(url, {"reviewResult": "Approve"}, "application/json").status_code == 204
    before = snapshot(pending)
    client.force_login(second_approver)

    response = client.patch(url, {"reviewResult": "Deny"}, content_type="application/json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "Conflict"
    assert f"already approved by {approver.display_name}" in error["message"]
    assert snapshot(pending) == before


@pytest.mark.parametrize(
    "body, words",
    [
        ({"reviewResult": "Maybe"}, "reviewResult"),
        ({"justification": "no decision"}, "reviewResult"),
        ({"reviewResult": "Approved"}, "reviewResult"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_decision_body_is_400_and_changes_nothing(client, approver, pending, body, words):
    client.force_login(approver)
    url, _ = stage_url(pending)
    before = snapshot(pending)

    response = client.patch(url, body, content_type="application/json")

    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    assert snapshot(pending) == before


def test_people_who_are_not_approvers_see_nothing_and_decide_nothing(
    client, requester, outsider, pending
):
    url, _ = stage_url(pending)
    other_owner = owner_of(CatalogFactory(), UserFactory())
    before = snapshot(pending)
    for person in (outsider, requester, other_owner):
        client.force_login(person)
        assert client.get(MINE).json()["value"] == []
        assert client.get(URL).json()["value"] == []
        assert client.get(f"{URL}/{pending.pk}").status_code == 404
        assert client.get(f"{URL}/{pending.pk}/stages").status_code == 404
        assert client.get(url).status_code == 404
        response = client.patch(url, {"reviewResult": "Approve"}, "application/json")
        assert response.status_code == 404, person
        assert response.json()["error"]["code"] == "ResourceNotFound"
    assert snapshot(pending) == before


def test_the_catalogs_owner_sees_the_approval_but_may_not_decide_it(client, catalog_owner, pending):
    owner_of(pending.access_package.catalog, catalog_owner)
    client.force_login(catalog_owner)
    url, _ = stage_url(pending)
    before = snapshot(pending)

    body = client.get(f"{URL}/{pending.pk}").json()
    response = client.patch(url, {"reviewResult": "Approve"}, content_type="application/json")

    assert body["stages"][0]["assignedToMe"] is False
    assert client.get(MINE).json()["value"] == []
    assert response.status_code == 403
    assert "not an approver" in response.json()["error"]["message"]
    assert snapshot(pending) == before


def test_nobody_decides_their_own_request_even_as_the_catalogs_owner(client, policy, approver):
    owner = owner_of(policy.access_package.catalog, UserFactory())
    request = request_submit(actor=owner, target=owner, access_package=policy.access_package)
    client.force_login(owner)
    url, _ = stage_url(request)
    before = snapshot(request)

    response = client.patch(url, {"reviewResult": "Approve"}, content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "You cannot decide your own request."
    assert snapshot(request) == before


def test_unknown_ids_and_a_wrong_filter_are_graph_errors(client, approver, pending):
    client.force_login(approver)
    assert client.get(f"{URL}/{NOBODY}").status_code == 404
    assert client.get(f"{URL}/{pending.pk}/stages/{NOBODY}").status_code == 404
    assert client.get(f"{URL}/{pending.pk}/stages/not-a-uuid").status_code == 404
    response = client.get(f"{URL}/filterByCurrentUser(on='target')")
    assert response.status_code == 400
    assert "approver" in response.json()["error"]["message"]


def test_a_personal_token_decides_and_a_read_only_one_may_not(api, user_token, approver, pending):
    url, stage = stage_url(pending)
    api.as_token(user_token(approver, [EM_READ]))
    assert [a["id"] for a in api.get(MINE).json()["value"]] == [str(pending.pk)]
    refused = api.patch(url, {"reviewResult": "Approve"})
    assert refused.status_code == 403
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED

    api.as_token(user_token(approver, [SUBJECT_ACCESS]))
    assert api.patch(url, {"reviewResult": "Approve"}).status_code == 204
    stage.refresh_from_db()
    assert (stage.review_result, stage.reviewed_by) == (ReviewResult.APPROVED, approver)


def test_an_application_has_no_approvals_of_its_own(api, app_token, pending):
    url, stage = stage_url(pending)
    api.as_token(app_token(["EntitlementManagement.ReadWrite.All"]))

    assert api.get(MINE).json()["value"] == []
    response = api.patch(url, {"reviewResult": "Approve"})

    assert response.status_code == 403
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


@pytest.mark.parametrize("count", [3, 12])
def test_listing_approvals_is_a_fixed_number_of_queries(
    client, django_assert_max_num_queries, approver, count
):
    policy = approval_policy(approvers=[approver])
    for _ in range(count):
        person = UserFactory()
        request_submit(actor=person, target=person, access_package=policy.access_package)
    client.force_login(approver)

    with django_assert_max_num_queries(6):
        body = client.get(MINE).json()
    with django_assert_max_num_queries(6):
        client.get(URL)

    assert len(body["value"]) == count
