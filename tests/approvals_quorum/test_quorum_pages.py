"""What approvers and requestors read about a quorum stage in My Access and on email links."""

import pytest
from django.urls import reverse

from approvals.links import decision_url
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(db):
    return UserFactory(display_name="Sam Security")


@pytest.fixture
def dora(db):
    return UserFactory(display_name="Dora Data")


@pytest.fixture
def request_obj(requester, sam, dora):
    groups = (group_of("Security", sam), group_of("Data owners", dora))
    return submitted(requester, quorum_policy(groups=groups))


def test_the_second_approver_reads_who_approved_and_who_is_still_needed(
    client, request_obj, sam, dora
):
    decide(sam, request_obj)
    client.force_login(dora)

    page = client.get(
        reverse("myaccess:approval_detail", args=[request_obj.approval_stages.get().pk])
    ).content.decode()

    assert "1 of 2 approvals; still needed: one from Data owners." in page
    assert "Approved by Sam Security" in page


def test_a_stage_i_approved_leaves_my_list_but_stays_in_the_others(client, request_obj, sam, dora):
    decide(sam, request_obj)
    stage = request_obj.approval_stages.get()

    client.force_login(sam)
    mine = client.get(reverse("myaccess:approvals"))
    client.force_login(dora)
    theirs = client.get(reverse("myaccess:approvals"))

    assert stage not in list(mine.context["page"])
    assert stage in list(theirs.context["page"])
    client.force_login(sam)
    assert client.get(reverse("myaccess:approval_detail", args=[stage.pk])).status_code == 404


def test_my_email_link_after_my_approval_says_the_stage_waits_for_the_others(
    client, request_obj, sam
):
    stage = request_obj.approval_stages.get()
    decide(sam, request_obj)
    client.force_login(sam)

    response = client.post(
        decision_url(stage=stage, approver=sam, absolute=False), {"decision": "approve"}
    )

    assert response.status_code == 410
    assert "it waits for the other approvers" in response.content.decode()


def test_the_requestor_timeline_says_who_approved_and_who_is_still_needed(
    client, requester, request_obj, sam
):
    decide(sam, request_obj, justification="Security checked")
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_detail", args=[request_obj.pk])).content.decode()

    assert "Stage 1: one approval" in page
    assert "Sam Security" in page
    assert "Security checked" in page
    assert "1 of 2 approvals; still needed: one from Data owners." in page
    assert "Stage 1 waiting for Dora Data" in page


def test_another_person_cannot_open_the_quorum_stage_or_its_link(
    client, request_obj, sam, outsider
):
    stage = request_obj.approval_stages.get()
    client.force_login(outsider)

    detail = client.get(reverse("myaccess:approval_detail", args=[stage.pk]))
    link = client.post(
        decision_url(stage=stage, approver=sam, absolute=False), {"decision": "approve"}
    )

    assert (detail.status_code, link.status_code) == (404, 403)
    stage.refresh_from_db()
    assert stage.approvers.filter(decided_datetime__isnull=False).count() == 0
