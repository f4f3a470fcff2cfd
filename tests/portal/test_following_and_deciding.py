"""Request history, cancel and resubmit, approvals one by one and in bulk, my assignments."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.models import AssignmentRequest, Channel, RequestState
from tests.factories import UserFactory

from .conftest import make_package, submit

pytestmark = pytest.mark.django_db


def approve(stage, approver, justification="Fine by me", decision=ReviewResult.APPROVED):
    return stage_decide(
        actor=approver,
        stage=stage,
        decision=decision,
        justification=justification,
        channel=Channel.PORTAL,
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_the_overview_counts_my_pending_tasks(client, requester, approver, approved_package):
    submit(requester, approved_package)
    client.force_login(approver)

    response = client.get(reverse("myaccess:home"))

    assert response.context["pending_approvals"] == 1
    assert "request waiting for your approval" in response.content.decode()


def test_my_history_lists_my_requests_with_their_state(client, requester, approved_package):
    submit(requester, approved_package)
    client.force_login(requester)

    page = client.get(reverse("myaccess:requests")).content.decode()

    assert "CRM access" in page
    assert "Pending approval" in page


def test_i_cancel_a_pending_request(client, requester, approved_package):
    request_obj = submit(requester, approved_package)
    client.force_login(requester)

    response = client.post(reverse("myaccess:request_cancel", args=[request_obj.pk]), follow=True)

    request_obj.refresh_from_db()
    assert request_obj.state == RequestState.CANCELED
    assert "is canceled" in " ".join(messages_of(response))
    assert "Request canceled" in response.content.decode()


def test_cancelling_a_finished_request_says_why_not(client, requester, open_package):
    request_obj = submit(requester, open_package)
    client.force_login(requester)

    response = client.post(reverse("myaccess:request_cancel", args=[request_obj.pk]), follow=True)

    assert response.status_code == 200
    assert "can no longer be canceled" in " ".join(messages_of(response))


def test_the_timeline_shows_who_approved_with_their_justification(
    client, requester, approver, approved_package
):
    request_obj = submit(requester, approved_package)
    approve(request_obj.approval_stages.get(), approver, "Welcome to the team")
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_detail", args=[request_obj.pk])).content.decode()

    assert "Request submitted" in page
    assert "Stage 1 approved" in page
    assert "Arno Approver" in page
    assert "Welcome to the team" in page


def test_a_denial_shows_its_reason_and_offers_to_request_again_prefilled(
    client, requester, approver, approved_package, ticket_question
):
    request_obj = submit(
        requester,
        approved_package,
        justification="Need the pipeline",
        answers={ticket_question.pk: "ABC-1234"},
    )
    approve(request_obj.approval_stages.get(), approver, "Ask your manager first", "Denied")
    client.force_login(requester)

    detail = client.get(reverse("myaccess:request_detail", args=[request_obj.pk]))
    resubmit_url = detail.context["resubmit_url"]
    form = client.get(resubmit_url).context["form"]

    assert "Stage 1 denied" in detail.content.decode()
    assert "Ask your manager first" in detail.content.decode()
    assert form.initial["justification"] == "Need the pipeline"
    assert form.initial[f"q_{ticket_question.pk}"] == "ABC-1234"


def test_an_approver_sees_the_request_and_approves_it_with_a_justification(
    client, requester, approver, approved_package, ticket_question
):
    request_obj = submit(requester, approved_package, answers={ticket_question.pk: "ABC-1234"})
    stage = request_obj.approval_stages.get()
    client.force_login(approver)

    listing = client.get(reverse("myaccess:approvals")).content.decode()
    response = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": ReviewResult.APPROVED, "justification": "Looks right"},
        follow=True,
    )

    assert "Rita Requester requests CRM access" in listing
    assert "ABC-1234" in listing
    assert "Quarterly planning" in listing
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.APPROVED
    assert stage.justification == "Looks right"
    assert "You approved Rita Requester" in " ".join(messages_of(response))


def test_a_decision_without_a_required_justification_is_refused_on_the_field(
    client, requester, approver, approved_package
):
    stage = submit(requester, approved_package).approval_stages.get()
    stage.policy_stage.is_approver_justification_required = True
    stage.policy_stage.save()
    client.force_login(approver)

    response = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]), {"decision": ReviewResult.DENIED}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["justification"]
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


def test_a_decision_post_with_a_bad_choice_or_id_is_not_a_server_error(
    client, requester, approver, approved_package
):
    stage = submit(requester, approved_package).approval_stages.get()
    client.force_login(approver)

    bad_choice = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]), {"decision": "maybe"}
    )
    bad_id = client.post(reverse("myaccess:approval_detail", args=["nope"]), {})
    bad_bulk = client.post(
        reverse("myaccess:approval_bulk"), {"stages": ["nope"], "decision": "Approved"}
    )

    assert bad_choice.status_code == 200
    assert bad_choice.context["form"].errors["decision"]
    assert bad_id.status_code == 404
    assert bad_bulk.status_code == 302
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


def test_an_approver_approves_several_requests_at_once_and_hears_about_each(
    client, approver, catalog, approved_package
):
    people = [UserFactory(display_name=f"Person {n}") for n in range(3)]
    stages = [submit(p, approved_package).approval_stages.get() for p in people]
    AssignmentRequest.objects.filter(pk=stages[2].request_id).update(state=RequestState.CANCELED)
    client.force_login(approver)

    response = client.post(
        reverse("myaccess:approval_bulk"),
        {
            "stages": [str(s.pk) for s in stages],
            "decision": ReviewResult.APPROVED,
            "justification": "Team onboarding",
        },
        follow=True,
    )

    results = [s.__class__.objects.get(pk=s.pk).review_result for s in stages]
    assert results == [ReviewResult.APPROVED, ReviewResult.APPROVED, ReviewResult.NOT_REVIEWED]
    assert messages_of(response) == [
        "You approved 2 requests. 1 other request could not be approved: "
        "it no longer waits for your decision."
    ]


def test_a_bulk_decision_without_a_selection_says_so(client, approver):
    client.force_login(approver)

    response = client.post(
        reverse("myaccess:approval_bulk"), {"decision": ReviewResult.APPROVED}, follow=True
    )

    assert "Select at least one request." in messages_of(response)


def test_my_decisions_are_in_the_approval_history(client, requester, approver, approved_package):
    approve(submit(requester, approved_package).approval_stages.get(), approver, "Go ahead")
    client.force_login(approver)

    page = client.get(reverse("myaccess:approval_history")).content.decode()

    assert "CRM access" in page
    assert "Go ahead" in page


def test_approvers_without_mfa_are_sent_to_set_it_up_when_required(
    client, settings, requester, approver, approved_package
):
    stage = submit(requester, approved_package).approval_stages.get()
    settings.MFA_REQUIRED_FOR_APPROVERS = True
    client.force_login(approver)

    listing = client.get(reverse("myaccess:approvals"))
    decision = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": ReviewResult.APPROVED},
        follow=True,
    )

    assert listing["Location"] == reverse("mfa_index")
    assert "two-factor authentication for approvers" in " ".join(messages_of(decision))
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


def test_approvers_with_mfa_decide_when_it_is_required(client, settings, approver):
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(user=approver, type=Authenticator.Type.TOTP, data={})
    settings.MFA_REQUIRED_FOR_APPROVERS = True
    client.force_login(approver)

    assert client.get(reverse("myaccess:approvals")).status_code == 200


def test_i_see_my_active_access_and_remove_it_after_confirming(client, requester, open_package):
    assignment = submit(requester, open_package).assignment
    client.force_login(requester)

    active = client.get(reverse("myaccess:active_assignments")).content.decode()
    confirm = client.get(reverse("myaccess:assignment_remove", args=[assignment.pk]))
    assignment.refresh_from_db()
    still_open = assignment.is_open
    client.post(reverse("myaccess:assignment_remove", args=[assignment.pk]))

    assert "Sales reports" in active
    assert "Remove your access to Sales reports?" in confirm.content.decode()
    assert still_open
    assignment.refresh_from_db()
    assert not assignment.is_open


def test_extend_is_offered_only_where_the_policy_allows_it(
    client, requester, open_package, catalog
):
    extendable = make_package(catalog, "Long project", enable_targets_to_self_update_access=True)
    submit(requester, open_package)
    long_one = submit(requester, extendable).assignment
    client.force_login(requester)

    page = client.get(reverse("myaccess:active_assignments")).content.decode()

    assert page.count(">Extend<") == 1
    assert reverse("myaccess:assignment_extend", args=[long_one.pk]) in page


def test_i_ask_to_extend_my_access_later_on(client, requester, catalog):
    package = make_package(
        catalog,
        "Long project",
        enable_targets_to_self_update_access=True,
        is_requestor_justification_required=True,
    )
    assignment = submit(requester, package).assignment
    url = reverse("myaccess:assignment_extend", args=[assignment.pk])

    with time_machine.travel(timezone.now() + timedelta(days=20)):
        client.force_login(requester)
        refused = client.post(url, {})
        response = client.post(url, {"justification": "Project runs longer"})

    assert refused.context["form"].errors["justification"], refused.context["form"].errors
    extension = AssignmentRequest.objects.get(assignment=assignment, request_type="userExtend")
    assert response["Location"] == reverse("myaccess:request_detail", args=[extension.pk])


def test_no_page_links_to_sign_up(client, requester):
    anonymous_login = client.get(reverse("account_login")).content.decode()
    client.force_login(requester)
    home = client.get(reverse("myaccess:home")).content.decode()

    for page in (anonymous_login, home):
        assert reverse("account_signup") not in page
        assert "sign up" not in page.lower()


def test_the_sign_in_page_offers_single_sign_on_when_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Contoso SSO",
                    "client_id": "portal",
                    "secret": "",
                    "settings": {"server_url": "https://sso.example.com"},
                }
            ]
        }
    }

    page = client.get(reverse("account_login")).content.decode()

    assert "Sign in with Contoso SSO" in page


def test_the_header_links_to_the_admin_only_for_admins(client, requester, catalog_owner):
    client.force_login(requester)
    plain = client.get(reverse("myaccess:home")).content.decode()
    client.force_login(catalog_owner)
    staff = client.get(reverse("myaccess:home")).content.decode()

    assert reverse("admin:index") not in plain
    assert reverse("admin:index") in staff


def test_an_unknown_page_shows_the_products_not_found_page(client, requester, settings):
    settings.DEBUG = False
    client.force_login(requester)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "We can't find that page" in response.content.decode()


def test_the_access_reviews_tab_has_an_empty_state(client, requester):
    client.force_login(requester)

    page = client.get(reverse("reviews:list")).content.decode()

    assert "No access reviews need your attention" in page
