"""Finding a package, requesting it, and the form refusing bad input while keeping it."""

from datetime import timedelta

import pytest
from django.urls import reverse

from entitlements.models import AssignmentRequest, RequestState, RequestType
from tests.factories import (
    AccessPackageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_subject,
    grant_role,
)

from .conftest import in_days, local_input, make_package, submit

pytestmark = pytest.mark.django_db


def request_url(package):
    return reverse("myaccess:request_create", args=[package.pk])


def valid_answers(ticket_question):
    return {f"q_{ticket_question.pk}": "ABC-1234"}


def test_the_package_list_shows_what_a_package_grants_and_its_policy_in_plain_words(
    client, requester, approved_package
):
    client.force_login(requester)

    page = client.get(reverse("myaccess:packages")).content.decode()

    assert "CRM access" in page
    assert "Member of CRM access group" in page
    assert "Approved by Arno Approver" in page
    assert "Access lasts 30 days." in page


def test_search_finds_packages_by_name_description_and_resource(
    client, requester, catalog, open_package, approved_package
):
    client.force_login(requester)

    def names(q):
        page = client.get(reverse("myaccess:packages"), {"q": q}).context["page"]
        return [p.display_name for p in page.object_list]

    assert names("reports") == ["Sales reports"]
    assert names("sales team") == ["CRM access", "Sales reports"]
    assert names("CRM access group") == ["CRM access"]
    assert names("nothing like this") == []


def test_a_search_without_results_says_so(client, requester, open_package):
    client.force_login(requester)

    page = client.get(reverse("myaccess:packages"), {"q": "zzz"}).content.decode()

    assert "No access package matches your search" in page


def test_a_hidden_package_is_not_listed_but_opens_by_its_link(client, requester, catalog):
    hidden = make_package(catalog, "Secret project")
    hidden.is_hidden = True
    hidden.save()
    client.force_login(requester)

    listing = client.get(reverse("myaccess:packages")).content.decode()
    page = client.get(reverse("myaccess:package", args=[hidden.pk])).content.decode()

    assert "Secret project" not in listing
    assert "Secret project" in page
    assert request_url(hidden) in page


def test_a_request_without_approval_is_delivered_and_the_confirmation_says_so(
    client, requester, open_package
):
    client.force_login(requester)

    response = client.post(request_url(open_package), {}, follow=True)

    request_obj = AssignmentRequest.objects.get(target=requester)
    assert response.redirect_chain[-1][0] == reverse(
        "myaccess:request_submitted", args=[request_obj.pk]
    )
    assert request_obj.assignment is not None
    assert "Your request is submitted" in response.content.decode()


def test_a_request_with_answers_and_a_period_waits_for_the_approver_named_on_the_confirmation(
    client, requester, approved_package, ticket_question, region_question
):
    client.force_login(requester)
    start, end = in_days(1), in_days(10)

    response = client.post(
        request_url(approved_package),
        {
            "justification": "Pipeline review",
            f"q_{ticket_question.pk}": "ABC-1234",
            f"q_{region_question.pk}": "eu",
            "schedule_start": local_input(start),
            "schedule_end": local_input(end),
        },
        follow=True,
    )

    request_obj = AssignmentRequest.objects.get(target=requester)
    assert request_obj.state == RequestState.PENDING_APPROVAL
    assert request_obj.justification == "Pipeline review"
    assert {a.display_value for a in request_obj.answers.all()} == {"ABC-1234", "Europe"}
    assert request_obj.schedule_end.replace(second=0, microsecond=0) == end.replace(
        second=0, microsecond=0
    )
    page = response.content.decode()
    assert "Arno Approver will decide" in page


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"justification": ""}, "justification", "Give a business justification."),
        ({"q_ticket": "abc"}, "q_ticket", "not in the expected format"),
        ({"q_ticket": ""}, "q_ticket", "This field is required."),
        (
            {"schedule_start": local_input(in_days(5)), "schedule_end": local_input(in_days(2))},
            "schedule_end",
            "The end must be after the start.",
        ),
        (
            {"schedule_start": local_input(in_days(1)), "schedule_end": local_input(in_days(60))},
            "schedule_end",
            "lasts at most 30 days",
        ),
        ({"schedule_start": "not a date"}, "schedule_start", "Enter a valid date/time."),
    ],
)
def test_the_form_refuses_bad_input_with_a_field_message_and_keeps_what_was_typed(
    client, requester, approved_package, ticket_question, change, field, message
):
    client.force_login(requester)
    data = {"justification": "Pipeline review", "q_ticket": "ABC-1234"}
    data.update(change)
    data = {k.replace("q_ticket", f"q_{ticket_question.pk}"): v for k, v in data.items()}
    field = field.replace("q_ticket", f"q_{ticket_question.pk}")

    response = client.post(request_url(approved_package), data)

    assert response.status_code == 200
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    page = response.content.decode()
    for value in data.values():
        assert value in page
    assert not AssignmentRequest.objects.exists()


def test_a_second_request_for_the_same_package_is_refused(client, requester, approved_package):
    submit(requester, approved_package)
    client.force_login(requester)

    page = client.get(reverse("myaccess:package", args=[approved_package.pk])).content.decode()
    response = client.post(request_url(approved_package), {"justification": "Again"})

    assert "already an open request" in page
    assert response.status_code == 403
    assert AssignmentRequest.objects.filter(target=requester).count() == 1


@pytest.mark.parametrize(
    "url_arg, data",
    [
        ("not-a-uuid", {}),
        ("00000000-0000-0000-0000-000000000000", {}),
        (None, {"policy": "not-a-uuid", "justification": "x"}),
        (None, {"policy": "00000000-0000-0000-0000-000000000000", "justification": "x"}),
        (None, {"schedule_start": "2024-13-45T99:99", "justification": "x"}),
        (None, {"target": "not-a-uuid", "justification": "x"}),
        (None, {"target": "00000000-0000-0000-0000-000000000000", "justification": "x"}),
    ],
)
def test_malformed_posts_never_give_a_server_error_and_create_nothing(
    client, requester, approved_package, url_arg, data
):
    client.force_login(requester)
    url = reverse("myaccess:request_create", args=[url_arg]) if url_arg else None

    response = client.post(url or request_url(approved_package), data)

    assert response.status_code in (200, 403, 404)
    assert not AssignmentRequest.objects.exists()


def test_a_request_for_someone_who_is_not_my_report_is_refused(
    client, requester, outsider, approved_package
):
    client.force_login(requester)

    response = client.post(
        request_url(approved_package), {"target": str(outsider.pk), "justification": "x"}
    )

    assert response.status_code == 403
    assert not AssignmentRequest.objects.exists()


def test_a_manager_requests_for_a_direct_report(client, manager, requester, catalog):
    package = make_package(catalog, "Team drive", enable_on_behalf_requestors_to_add_access=True)
    add_subject(package.assignment_policies.get(), "onBehalfRequestor", "targetManager")
    client.force_login(manager)

    form_page = client.get(request_url(package)).content.decode()
    response = client.post(request_url(package), {"target": str(requester.pk)})

    assert requester.display_name in form_page
    request_obj = AssignmentRequest.objects.get(access_package=package)
    assert response.status_code == 302
    assert request_obj.target == requester
    assert request_obj.requestor == manager
    assert request_obj.request_type == RequestType.ON_BEHALF_ADD


def test_when_several_policies_apply_the_requestor_chooses_one(client, requester, catalog):
    package = AccessPackageFactory(catalog=catalog, display_name="Travel tool")
    grant_role(package, GroupResourceFactory(catalog=catalog).roles.get(origin_id="Member"))
    fast = PolicyFactory(access_package=package, display_name="Short trips")
    PolicyFactory(
        access_package=package, display_name="Long trips", expiration_duration=timedelta(days=90)
    )
    client.force_login(requester)

    chooser = client.get(request_url(package))
    form = client.get(request_url(package), {"policy": str(fast.pk)})
    client.post(request_url(package), {"policy": str(fast.pk)})

    assert "Short trips" in chooser.content.decode()
    assert "Long trips" in chooser.content.decode()
    assert form.context["policy"] == fast
    assert AssignmentRequest.objects.get(target=requester).assignment_policy == fast


def test_questions_are_shown_in_the_requestors_language(client, approved_package, ticket_question):
    ticket_question.localizations.create(language_code="fr", text="Numéro de ticket ?")
    french = UserFactory(preferred_language="fr")
    client.force_login(french)

    page = client.get(request_url(approved_package)).content.decode()

    assert "Numéro de ticket ?" in page
