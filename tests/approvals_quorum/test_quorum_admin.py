"""The quorum and shortening settings on a stage's admin page: saved, or refused on the field."""

import pytest
from django.urls import reverse

from entitlements.models import QuorumMode
from tests.approvals_quorum.setup import quorum_policy
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def posted_form(response, **changes):
    """The POST data of an admin change page as it is shown, with ``changes``."""
    forms = [response.context["adminform"].form]
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def stage(db):
    people = [UserFactory(), UserFactory()]
    return quorum_policy(users=people, mode=QuorumMode.ANY_ONE).approval_stages.get()


def change_url(stage):
    return reverse("admin:entitlements_approvalstage_change", args=[stage.pk])


def test_an_admin_sets_two_of_the_listed_approvers_and_lets_them_shorten(client, admin_user, stage):
    client.force_login(admin_user)
    page = client.get(change_url(stage))

    response = client.post(
        change_url(stage),
        posted_form(
            page, quorum_mode=QuorumMode.SOME_OF, quorum_count="2", approvers_may_shorten="on"
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    stage.refresh_from_db()
    assert (stage.quorum_mode, stage.quorum_count, stage.approvers_may_shorten) == (
        QuorumMode.SOME_OF,
        2,
        True,
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"quorum_mode": QuorumMode.SOME_OF, "quorum_count": "3"}, "at most 2 people"),
        ({"quorum_mode": QuorumMode.SOME_OF, "quorum_count": ""}, "how many approvals"),
        ({"quorum_mode": QuorumMode.ANY_ONE, "quorum_count": "2"}, "only with"),
    ],
)
def test_a_nonsense_quorum_is_refused_with_a_message_and_nothing_changes(
    client, admin_user, stage, changes, words
):
    client.force_login(admin_user)
    page = client.get(change_url(stage))

    response = client.post(change_url(stage), posted_form(page, **changes))

    assert response.status_code == 200
    assert words in response.content.decode()
    stage.refresh_from_db()
    assert (stage.quorum_mode, stage.quorum_count) == (QuorumMode.ANY_ONE, None)


def test_someone_without_a_role_in_the_catalog_cannot_change_the_quorum(client, stage):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)

    response = client.post(
        change_url(stage), {"quorum_mode": QuorumMode.SOME_OF, "quorum_count": "1"}
    )

    assert response.status_code in (302, 403, 404)
    stage.refresh_from_db()
    assert stage.quorum_mode == QuorumMode.ANY_ONE
