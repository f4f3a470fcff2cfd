"""The quorum and shortening settings through the Graph-compatible API (product extensions),
and an approver shortening the access through the API."""

from datetime import UTC, datetime

import pytest
import time_machine

from approvals.models import RequestApprovalStage
from entitlements.models import ApprovalStage, QuorumMode
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import AccessPackageFactory, GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

POLICIES = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies"
APPROVALS = "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals"
G = "#microsoft.graph."


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def policy_body(package, stage):
    return {
        "displayName": "Quorum",
        "accessPackage": {"id": str(package.pk)},
        "allowedTargetScope": "allMemberUsers",
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": True,
            "stages": [{"durationBeforeAutomaticDenial": "P14D", **stage}],
        },
    }


def users(*people):
    return [{"@odata.type": f"{G}singleUser", "userId": str(p.pk)} for p in people]


def test_a_policy_with_a_k_of_n_stage_is_created_and_read_back(admin_client):
    package, people = AccessPackageFactory(), [UserFactory() for _ in range(3)]
    stage = {
        "primaryApprovers": users(*people),
        "quorumMode": "someOf",
        "quorumCount": 2,
        "approversMayShortenAccess": True,
    }

    response = admin_client.post(
        POLICIES, policy_body(package, stage), content_type="application/json"
    )

    assert response.status_code == 201, response.content
    saved = ApprovalStage.objects.get(policy__access_package=package)
    assert (saved.quorum_mode, saved.quorum_count, saved.approvers_may_shorten) == (
        QuorumMode.SOME_OF,
        2,
        True,
    )
    read = response.json()["requestApprovalSettings"]["stages"][0]
    assert (read["quorumMode"], read["quorumCount"], read["approversMayShortenAccess"]) == (
        "someOf",
        2,
        True,
    )


def test_a_graph_client_that_sends_no_quorum_gets_any_one_approver(admin_client):
    package = AccessPackageFactory()

    response = admin_client.post(
        POLICIES,
        policy_body(package, {"primaryApprovers": users(UserFactory())}),
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    stage = ApprovalStage.objects.get(policy__access_package=package)
    assert (stage.quorum_mode, stage.quorum_count, stage.approvers_may_shorten) == (
        QuorumMode.ANY_ONE,
        None,
        False,
    )


def created_k_of_n_policy(admin_client, package, people):
    stage = {
        "primaryApprovers": users(*people),
        "quorumMode": "someOf",
        "quorumCount": 2,
        "approversMayShortenAccess": True,
    }
    response = admin_client.post(
        POLICIES, policy_body(package, stage), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_put_from_a_graph_client_that_knows_no_quorum_keeps_the_stages_quorum(admin_client):
    package, people = AccessPackageFactory(), [UserFactory() for _ in range(3)]
    policy_id = created_k_of_n_policy(admin_client, package, people)
    body = policy_body(package, {"primaryApprovers": users(*people)})
    body["displayName"] = "Renamed"

    response = admin_client.put(f"{POLICIES}/{policy_id}", body, content_type="application/json")

    assert response.status_code == 200, response.content
    stage = ApprovalStage.objects.get(policy__access_package=package)
    assert stage.policy.display_name == "Renamed"
    assert (stage.quorum_mode, stage.quorum_count, stage.approvers_may_shorten) == (
        QuorumMode.SOME_OF,
        2,
        True,
    )


def test_a_put_that_sets_any_one_drops_the_old_count(admin_client):
    package, people = AccessPackageFactory(), [UserFactory() for _ in range(3)]
    policy_id = created_k_of_n_policy(admin_client, package, people)
    body = policy_body(package, {"primaryApprovers": users(*people), "quorumMode": "anyOne"})

    response = admin_client.put(f"{POLICIES}/{policy_id}", body, content_type="application/json")

    assert response.status_code == 200, response.content
    stage = ApprovalStage.objects.get(policy__access_package=package)
    assert (stage.quorum_mode, stage.quorum_count, stage.approvers_may_shorten) == (
        QuorumMode.ANY_ONE,
        None,
        True,
    )


@pytest.mark.parametrize(
    ("stage", "words"),
    [
        ({"quorumMode": "someOf", "quorumCount": 0}, "quorumCount"),
        ({"quorumMode": "someOf", "quorumCount": 3}, "at most 2 people"),
        ({"quorumMode": "someOf"}, "how many approvals"),
        ({"quorumMode": "anyOne", "quorumCount": 2}, "only with"),
        ({"quorumMode": "everyone"}, "quorumMode"),
    ],
)
def test_a_nonsense_quorum_is_400_in_graphs_error_shape_and_nothing_is_made(
    admin_client, stage, words
):
    package = AccessPackageFactory()
    body = policy_body(package, {"primaryApprovers": users(UserFactory(), UserFactory()), **stage})

    response = admin_client.post(POLICIES, body, content_type="application/json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] and words in error["message"]
    assert not package.assignment_policies.exists()


def test_one_from_each_with_a_single_entry_is_400(admin_client):
    package = AccessPackageFactory()
    group = GroupFactory()
    body = policy_body(
        package,
        {
            "primaryApprovers": [{"@odata.type": f"{G}groupMembers", "groupId": str(group.pk)}],
            "quorumMode": "oneFromEach",
        },
    )

    response = admin_client.post(POLICIES, body, content_type="application/json")

    assert response.status_code == 400
    assert "at least two approvers" in response.json()["error"]["message"]


@time_machine.travel(datetime(2027, 1, 10, 9, 0, tzinfo=UTC), tick=False)
def test_an_approver_shortens_the_access_through_the_api_and_the_request_shows_it(
    client, requester
):
    ann = UserFactory()
    policy = quorum_policy(users=[ann], mode=QuorumMode.ANY_ONE, approvers_may_shorten=True)
    request = submitted(requester, policy)
    stage = RequestApprovalStage.objects.get(request=request)
    url = f"{APPROVALS}/{request.pk}/stages/{stage.pk}"
    client.force_login(ann)

    later = client.patch(
        url,
        {"reviewResult": "Approve", "approvedEndDateTime": "2099-01-01T00:00:00Z"},
        content_type="application/json",
    )
    done = client.patch(
        url,
        {"reviewResult": "Approve", "approvedEndDateTime": "2027-02-01T00:00:00Z"},
        content_type="application/json",
    )

    assert later.status_code == 400
    assert "at the latest" in later.json()["error"]["message"]
    assert done.status_code == 204, done.content
    client.force_login(requester)
    mine = client.get(
        f"/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{request.pk}"
    ).json()
    assert mine["schedule"]["expiration"]["endDateTime"].startswith("2027-02-01T00:00:00")


def test_someone_else_cannot_decide_or_shorten_through_the_api(client, requester, outsider):
    ann = UserFactory()
    policy = quorum_policy(users=[ann], mode=QuorumMode.ANY_ONE, approvers_may_shorten=True)
    request = submitted(requester, policy)
    stage = RequestApprovalStage.objects.get(request=request)
    client.force_login(outsider)

    response = client.patch(
        f"{APPROVALS}/{request.pk}/stages/{stage.pk}",
        {"reviewResult": "Approve", "approvedEndDateTime": "2027-02-01T00:00:00Z"},
        content_type="application/json",
    )

    assert response.status_code in (403, 404)
    request.refresh_from_db()
    assert request.schedule_end is None


def test_a_quorum_stage_i_approved_is_no_longer_assigned_to_me_while_it_waits_for_others(
    client, requester
):
    ann, ben, carl = UserFactory(), UserFactory(), UserFactory()
    policy = quorum_policy(users=[ann, ben, carl], mode=QuorumMode.SOME_OF, count=2)
    request = submitted(requester, policy)
    stage = RequestApprovalStage.objects.get(request=request)
    client.force_login(ann)

    before = client.get(f"{APPROVALS}/{request.pk}").json()["stages"][0]["assignedToMe"]
    approved = client.patch(
        f"{APPROVALS}/{request.pk}/stages/{stage.pk}",
        {"reviewResult": "Approve"},
        content_type="application/json",
    )
    after_mine = client.get(f"{APPROVALS}/{request.pk}").json()["stages"][0]
    client.force_login(ben)
    for_ben = client.get(f"{APPROVALS}/{request.pk}").json()["stages"][0]

    assert approved.status_code == 204, approved.content
    assert before is True
    assert (after_mine["status"], after_mine["assignedToMe"]) == ("InProgress", False)
    assert for_ben["assignedToMe"] is True


def test_a_put_that_changes_the_quorum_leaves_open_stages_needing_what_they_needed(
    admin_client, requester
):
    ann, ben, carl = UserFactory(), UserFactory(), UserFactory()
    policy = quorum_policy(users=[ann, ben, carl], mode=QuorumMode.SOME_OF, count=2)
    request = submitted(requester, policy)
    body = policy_body(
        policy.access_package, {"primaryApprovers": users(ann, ben, carl), "quorumMode": "anyOne"}
    )
    response = admin_client.put(f"{POLICIES}/{policy.pk}", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert ApprovalStage.objects.get(policy=policy).quorum_mode == QuorumMode.ANY_ONE

    stage = decide(ann, request, justification="Fine")

    stage.refresh_from_db()
    assert (stage.quorum_mode, stage.quorum_count) == (QuorumMode.SOME_OF, 2)
    assert stage.is_open
    stage = decide(ben, request, justification="Fine")
    stage.refresh_from_db()
    assert not stage.is_open


def test_a_one_from_each_stage_keeps_the_entries_it_opened_with(admin_client, requester):
    sam, dora = UserFactory(display_name="Sam"), UserFactory(display_name="Dora")
    policy = quorum_policy(groups=[group_of("Security", sam), group_of("Data", dora)])
    request = submitted(requester, policy)
    ApprovalStage.objects.get(policy=policy).approver_sets.filter(
        group__display_name="Data"
    ).delete()

    stage = decide(sam, request)

    stage.refresh_from_db()
    assert stage.is_open
    assert [entry["label"] for entry in stage.quorum_entries] == ["Security", "Data"]


@pytest.mark.parametrize("value", [5, "tomorrow", [], {"a": 1}])
def test_an_approve_until_that_is_no_date_time_is_400_and_nothing_is_decided(
    client, requester, value
):
    ann = UserFactory()
    policy = quorum_policy(users=[ann], mode=QuorumMode.ANY_ONE, approvers_may_shorten=True)
    request = submitted(requester, policy)
    stage = RequestApprovalStage.objects.get(request=request)
    client.force_login(ann)

    response = client.patch(
        f"{APPROVALS}/{request.pk}/stages/{stage.pk}",
        {"reviewResult": "Approve", "approvedEndDateTime": value},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"code", "message"}
    stage.refresh_from_db()
    assert stage.is_open


@pytest.mark.parametrize("count", ["two", 2.5, True, -1, 70000])
def test_a_quorum_count_that_is_no_small_whole_number_is_400(admin_client, count):
    package, people = AccessPackageFactory(), [UserFactory() for _ in range(3)]
    stage = {"primaryApprovers": users(*people), "quorumMode": "someOf", "quorumCount": count}

    response = admin_client.post(
        POLICIES, policy_body(package, stage), content_type="application/json"
    )

    assert response.status_code == 400
    assert "quorumCount" in response.json()["error"]["message"]
    assert not ApprovalStage.objects.filter(policy__access_package=package).exists()
