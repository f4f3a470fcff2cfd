"""My Access: the delegation page, ending a delegation, revoking an approval; who may."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalDelegation, ApprovalRevocation, StageApprover
from entitlements.models import AdminRole, AssignmentRequest, QuorumMode, RequestState, RequestType
from tests.factories import UserFactory
from tests.foundation.admin_support import admin_url, give_role

from .conftest import approve, delegate, make_package, submit

pytestmark = pytest.mark.django_db
DELEGATION = reverse("myaccess:approval_delegation")


def local(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def errors_of(response):
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def test_anonymous_people_are_sent_to_sign_in_from_every_new_page(client, ann, ben, package):
    delegation = delegate(ann, ben)
    request = submit(UserFactory(), package)
    approve(ann, request)
    approval = StageApprover.objects.get(user=ann)
    urls = [
        DELEGATION,
        reverse("myaccess:approval_delegation_end", args=[delegation.pk]),
        reverse("myaccess:approval_revoke", args=[approval.pk]),
    ]
    for url in urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("account_login")), url


def test_an_approver_delegates_their_approvals_from_the_page(client, ann, ben):
    client.force_login(ann)
    end = timezone.now() + timedelta(days=5)

    response = client.post(
        DELEGATION, {"delegate": "BEN@example.com", "end": local(end), "note": "Holiday"}
    )

    assert response.status_code == 302
    assert response["Location"] == DELEGATION
    delegation = ApprovalDelegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.note) == (ann, ben, "Holiday")
    page = client.get(DELEGATION).content.decode()
    assert "Ben Example" in page and "In force" in page


def test_the_delegate_sees_whom_they_approve_for(client, ann, ben):
    delegate(ann, ben)
    client.force_login(ben)

    page = client.get(DELEGATION).content.decode()

    assert "On behalf of Ann Example" in page


def test_the_form_says_which_time_zone_its_times_are_in(client, ann, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    client.force_login(ann)

    page = client.get(DELEGATION).content.decode()

    assert "Times are in your organization's time zone (Europe/Berlin)." in page


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"delegate": "ann@example.com"}, "delegate", "Choose someone other than yourself."),
        ({"delegate": "nobody@example.com"}, "delegate", "Nobody who can sign in has this email."),
        ({"delegate": "gone@example.com"}, "delegate", "Nobody who can sign in has this email."),
        ({"end": -1}, "end", "The end must be in the future."),
        ({"start": 3, "end": 2}, "end", "The end must be after the start."),
        ({"start": -1, "end": 2}, "start", "The delegation cannot start in the past."),
        ({"end": None}, "end", "Say until when they approve for you."),
    ],
)
def test_the_form_names_what_is_wrong_and_nothing_is_saved(client, ann, ben, data, field, message):
    UserFactory(email="gone@example.com", is_active=False)
    now = timezone.now()
    post = {"delegate": "ben@example.com", "end": local(now + timedelta(days=3))}
    for name in ("start", "end"):
        if name in data:
            post[name] = "" if data[name] is None else local(now + timedelta(days=data[name]))
    if "delegate" in data:
        post["delegate"] = data["delegate"]
    client.force_login(ann)

    response = client.post(DELEGATION, post)

    assert response.status_code == 200
    assert message in errors_of(response)[field]
    assert not ApprovalDelegation.objects.exists()


def test_an_overlapping_delegation_is_refused_above_the_form(client, ann, ben, carl):
    delegate(ann, ben, days=7)
    client.force_login(ann)

    response = client.post(
        DELEGATION,
        {"delegate": "carl@example.com", "end": local(timezone.now() + timedelta(days=2))},
    )

    assert "You already delegate your approvals to Ben Example" in " ".join(
        response.context["form"].non_field_errors()
    )
    assert ApprovalDelegation.objects.count() == 1


def test_the_pages_change_state_only_on_post_with_a_csrf_token(ann, ben):
    delegation = delegate(ann, ben)
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    end_url = reverse("myaccess:approval_delegation_end", args=[delegation.pk])

    assert client.get(end_url).status_code == 405
    assert client.post(end_url).status_code == 403
    assert client.post(DELEGATION, {"delegate": "x", "end": "y"}).status_code == 403
    delegation.refresh_from_db()
    assert delegation.ended_datetime is None


@pytest.mark.parametrize("who", ["delegate", "another approver", "requestor", "outsider"])
def test_only_the_approver_ends_their_delegation(client, ann, ben, carl, package, who):
    delegation = delegate(ann, ben)
    rita = UserFactory()
    submit(rita, package)
    person = {"delegate": ben, "another approver": carl, "requestor": rita}.get(
        who
    ) or UserFactory()
    client.force_login(person)

    response = client.post(reverse("myaccess:approval_delegation_end", args=[delegation.pk]))

    assert response.status_code == 404
    delegation.refresh_from_db()
    assert delegation.ended_datetime is None


def test_the_approver_ends_their_delegation_early(client, ann, ben):
    delegation = delegate(ann, ben)
    client.force_login(ann)

    response = client.post(reverse("myaccess:approval_delegation_end", args=[delegation.pk]))

    assert response["Location"] == DELEGATION
    delegation.refresh_from_db()
    assert delegation.ended_datetime is not None
    assert "Ended early" in client.get(DELEGATION).content.decode()


def test_the_delegate_sees_on_whose_behalf_a_request_waits_and_decides_it(
    client, ann, ben, package
):
    delegate(ann, ben)
    rita = UserFactory(display_name="Rita Requester")
    request = submit(rita, package)
    stage = request.approval_stages.get()
    client.force_login(ben)

    listing = client.get(reverse("myaccess:approvals")).content.decode()
    detail = client.get(reverse("myaccess:approval_detail", args=[stage.pk])).content.decode()

    assert "On behalf of Ann Example" in listing
    assert "You decide on behalf of Ann Example" in detail
    client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": "Approved", "justification": "Covering for Ann"},
    )
    client.force_login(rita)
    timeline = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()
    assert "Stage 1 approved</strong> · Ben Example on behalf of Ann Example" in timeline


# --- Revoking ---------------------------------------------------------------------------------


@pytest.fixture
def approved(ann, package):
    request = submit(UserFactory(display_name="Rita Requester"), package)
    approve(ann, request)
    return request, StageApprover.objects.get(stage__request=request, user=ann)


def test_the_history_offers_to_revoke_an_approval_within_the_window(client, ann, approved):
    client.force_login(ann)

    page = client.get(reverse("myaccess:approval_history")).content.decode()

    assert reverse("myaccess:approval_revoke", args=[approved[1].pk]) in page


def test_an_applied_extension_is_not_offered_for_revoking(client, ann, approved):
    request, approval = approved
    AssignmentRequest.objects.filter(pk=request.pk).update(
        request_type=RequestType.USER_EXTEND, state=RequestState.DELIVERED
    )
    client.force_login(ann)

    page = client.get(reverse("myaccess:approval_history")).content.decode()
    confirm = client.get(reverse("myaccess:approval_revoke", args=[approval.pk]))

    assert reverse("myaccess:approval_revoke", args=[approval.pk]) not in page
    assert confirm.context["can_revoke"] is False
    assert confirm.context["delivered"] is False


def test_the_history_offers_nothing_after_the_window(client, ann, approved, settings):
    settings.APPROVAL_REVOKE_WINDOW = timedelta(0)
    client.force_login(ann)

    page = client.get(reverse("myaccess:approval_history")).content.decode()
    response = client.post(
        reverse("myaccess:approval_revoke", args=[approved[1].pk]), {"reason": "Oops"}
    )

    assert reverse("myaccess:approval_revoke", args=[approved[1].pk]) not in page
    assert "The time to revoke this approval ended" in " ".join(
        response.context["form"].non_field_errors()
    )
    assert not ApprovalRevocation.objects.exists()


@pytest.mark.parametrize("who", ["another approver", "requestor", "outsider"])
def test_only_the_approver_who_gave_it_reaches_the_revoke_page(client, ben, approved, who):
    request, approval = approved
    StageApprover.objects.create(stage=approval.stage, user=ben, kind=approval.kind)
    person = {"another approver": ben, "requestor": request.target}.get(who) or UserFactory()
    client.force_login(person)
    url = reverse("myaccess:approval_revoke", args=[approval.pk])

    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "Mine now"}).status_code == 404
    assert not ApprovalRevocation.objects.exists()


def test_the_approver_revokes_with_a_reason(client, ann, approved):
    request, approval = approved
    client.force_login(ann)
    url = reverse("myaccess:approval_revoke", args=[approval.pk])

    assert "The request will be denied" in client.get(url).content.decode()
    missing = client.post(url, {"reason": ""})
    response = client.post(url, {"reason": "Approved by mistake"})

    assert errors_of(missing)["reason"] == ["Say why you revoke your approval."]
    assert response["Location"] == reverse("myaccess:approval_history")
    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    history = client.get(reverse("myaccess:approval_history")).content.decode()
    assert "Revoked" in history
    client.force_login(request.target)
    timeline = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()
    assert "Stage 1: approval revoked</strong> · Ann Example" in timeline
    assert "Approved by mistake" in timeline


def test_the_revoke_page_changes_nothing_on_get_and_needs_csrf(ann, approved):
    request, approval = approved
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    url = reverse("myaccess:approval_revoke", args=[approval.pk])

    assert client.get(url).status_code == 200
    assert client.post(url, {"reason": "x"}).status_code == 403
    assert not ApprovalRevocation.objects.exists()


def test_a_person_with_approvals_elsewhere_cannot_revoke_someone_elses(client, ann, ben, approved):
    other = submit(UserFactory(), make_package("Audit", ben))
    approve(ben, other)
    client.force_login(ben)

    response = client.post(
        reverse("myaccess:approval_revoke", args=[approved[1].pk]), {"reason": "x"}
    )

    assert response.status_code == 404


def test_superusers_read_the_delegations_in_the_admin_and_catalog_roles_do_not(
    client, ann, ben, admin_user, catalog_owner
):
    delegation = delegate(ann, ben)
    give_role(catalog_owner, AdminRole.CATALOG_OWNER, make_package("Sales", ann).catalog)
    changelist = admin_url(ApprovalDelegation, "changelist")
    change = admin_url(ApprovalDelegation, "change", delegation.pk)

    client.force_login(admin_user)
    listing = client.get(changelist)
    page = client.get(change)
    assert listing.status_code == 200 and "Ben Example" in listing.content.decode()
    assert page.status_code == 200 and "On holiday" in page.content.decode()
    assert client.post(change, {"note": "changed"}).status_code == 403
    assert client.get(admin_url(ApprovalDelegation, "add")).status_code == 403

    client.force_login(catalog_owner)
    assert client.get(changelist).status_code == 403
    assert client.get(change).status_code in (302, 403)


def test_an_approval_that_did_not_complete_a_quorum_stage_is_in_the_history_and_revocable(
    client, ann, ben, carl
):
    package = make_package("Vault", ann, ben, carl)
    stage = package.assignment_policies.get().approval_stages.get()
    stage.quorum_mode, stage.quorum_count = QuorumMode.SOME_OF, 2
    stage.save()
    request = submit(UserFactory(), package)
    approve(ann, request, justification="Looks right")
    client.force_login(ann)

    history = client.get(reverse("myaccess:approval_history")).content.decode()
    approval = StageApprover.objects.get(stage__request=request, user=ann)
    assert "Looks right" in history
    assert reverse("myaccess:approval_revoke", args=[approval.pk]) in history
    client.post(reverse("myaccess:approval_revoke", args=[approval.pk]), {"reason": "Too soon"})

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
