"""'Preview the effect' on the policy page: who would lose access and who could newly
request, from the unsaved form, with nothing saved."""

import pytest
from django.urls import reverse

from entitlements.models import (
    AdminRole,
    AllowedTargetScope,
    AssignmentPolicy,
    PolicySubjectSet,
    SubjectType,
)
from entitlements.services.whatif import policy_whatif
from tests.factories import PolicyFactory, UserFactory, add_member
from tests.foundation.admin_support import add_row, admin_url, errors_of, give_role, page_data
from tests.rules.conftest import automatic_policy

from .conftest import PREVIEW, counts, hold

pytestmark = pytest.mark.django_db
SUBJECTS = "subject_sets"


def change_url(policy):
    return admin_url(AssignmentPolicy, "change", policy.pk)


def form_of(client, policy):
    data = page_data(client.get(change_url(policy)))
    data.pop("_save")
    data[PREVIEW] = "Preview the effect"
    return data


def test_moving_who_may_request_to_another_group_shows_who_loses_and_who_gains(
    client, admin_user, world
):
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data[f"{SUBJECTS}-0-group"] = str(world["audit"].pk)
    before = counts()

    response = client.post(change_url(world["policy"]), data)

    assert response.status_code == 200, errors_of(response)
    whatif = response.context["whatif"]
    assert whatif.losing == 2
    assert whatif.losing_names == [
        "Ann Accountant <ann@example.com>",
        "Ben Bookkeeper <ben@example.com>",
    ]
    assert whatif.gaining == 1  # Cat, in Audit; Dan is in no group
    page = response.content.decode()
    assert "2 current holders would lose access" in page
    assert "Ann Accountant &lt;ann@example.com&gt;" in page
    assert "1 person would newly be able to request" in page
    assert "Nothing has been saved yet" in page
    # the form keeps the unsaved change, ready to be saved
    assert f'<option value="{world["audit"].pk}" selected>Audit</option>' in page
    assert counts() == before
    assert world["policy"].subject_sets.get().group == world["finance"]


def test_an_unchanged_form_previews_nothing_lost_and_nobody_new(client, admin_user, world):
    client.force_login(admin_user)

    response = client.post(change_url(world["policy"]), form_of(client, world["policy"]))

    whatif = response.context["whatif"]
    assert (whatif.losing, whatif.gaining, whatif.notes) == (0, 0, [])


def test_holders_keep_access_when_the_policy_does_not_remove_it_and_the_preview_says_so(
    client, admin_user, world
):
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data[f"{SUBJECTS}-0-group"] = str(world["audit"].pk)
    data.pop("remove_access_when_target_leaves_allowed_targets")

    whatif = client.post(change_url(world["policy"]), data).context["whatif"]

    assert whatif.losing == 0
    assert "2 current holders would no longer be in the policy's scope" in whatif.notes[0]


def test_a_person_an_administrator_assigned_directly_does_not_lose_access(
    client, admin_user, world
):
    hold(world["policy"], UserFactory(display_name="Zed Direct"), by_admin=True)
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data[f"{SUBJECTS}-0-DELETE"] = "on"
    add_row(
        data,
        SUBJECTS,
        purpose=PolicySubjectSet.Purpose.ALLOWED_TARGET,
        subject_type=SubjectType.SINGLE_USER,
        user=world["dan"],
    )

    whatif = client.post(change_url(world["policy"]), data).context["whatif"]

    assert whatif.losing == 2  # Ann and Ben; Zed was assigned by an administrator
    assert whatif.gaining == 1  # Dan


def test_people_another_policy_already_lets_request_are_not_counted_as_new(
    client, admin_user, world
):
    PolicyFactory(
        access_package=world["package"],
        display_name="Everyone",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
    )
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data["allowed_target_scope"] = AllowedTargetScope.ALL_DIRECTORY_USERS

    whatif = client.post(change_url(world["policy"]), data).context["whatif"]

    assert whatif.gaining == 0


def test_widening_to_all_members_counts_everyone_new_who_does_not_hold_it(
    client, admin_user, world
):
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data["allowed_target_scope"] = AllowedTargetScope.ALL_MEMBER_USERS

    whatif = client.post(change_url(world["policy"]), data).context["whatif"]

    # Cat, Dan and the admin; Ann and Ben hold it already
    assert whatif.gaining == 3
    assert whatif.losing == 0


def test_an_automatic_policys_rule_change_says_who_would_be_assigned_and_who_would_lose_it(
    client, admin_user
):
    _package, policy, _resource = automatic_policy(
        'user.department -eq "Sales"', remove_access_when_target_leaves_allowed_targets=True
    )
    seller = UserFactory(display_name="Sam Seller", department="Sales")
    hold(policy, seller)
    for n in range(3):
        UserFactory(display_name=f"Marketer {n}", department="Marketing")
    client.force_login(admin_user)
    data = form_of(client, policy)
    data[f"{SUBJECTS}-0-membership_rule"] = 'user.department -eq "Marketing"'
    before = counts()

    response = client.post(change_url(policy), data)

    whatif = response.context["whatif"]
    assert (whatif.losing, whatif.gaining, whatif.gaining_is_assignment) == (1, 3, True)
    assert "3 people would be assigned the package automatically" in response.content.decode()
    assert counts() == before
    assert policy.subject_sets.get().membership_rule == 'user.department -eq "Sales"'


def test_a_wrong_rule_is_reported_and_nothing_is_previewed(client, admin_user):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    client.force_login(admin_user)
    data = form_of(client, policy)
    data[f"{SUBJECTS}-0-membership_rule"] = 'user.department -eq "Sales'

    response = client.post(change_url(policy), data)

    assert response.status_code == 200
    assert response.context["whatif"] is None
    assert any("no closing double quote" in m for m in errors_of(response))


def test_a_catalog_reader_may_not_preview_a_change(client, world):
    reader = UserFactory(is_staff=True)
    give_role(reader, AdminRole.CATALOG_READER, world["package"].catalog)
    client.force_login(reader)
    data = page_data(client.get(change_url(world["policy"])))
    assert "Preview the effect" not in client.get(change_url(world["policy"])).content.decode()
    data[PREVIEW] = "Preview the effect"

    assert client.post(change_url(world["policy"]), data).status_code == 403


def test_the_owner_of_another_catalog_cannot_reach_the_policy(client, world, admin_user):
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    stranger = UserFactory(is_staff=True)
    give_role(stranger, AdminRole.CATALOG_OWNER, PolicyFactory().access_package.catalog)
    client.force_login(stranger)

    response = client.post(change_url(world["policy"]), data)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_the_page_shows_the_button_to_whoever_may_change_the_policy(client, admin_user, world):
    client.force_login(admin_user)

    page = client.get(change_url(world["policy"])).content.decode()

    assert 'name="_whatif" value="Preview the effect"' in page
    assert "entitlements/whatif.css" in page


@pytest.mark.parametrize("people", [2, 40])
def test_the_preview_costs_the_same_queries_however_many_people(
    client, admin_user, world, people, django_assert_num_queries, django_assert_max_num_queries
):
    for _n in range(people):
        person = UserFactory()
        add_member(world["finance"], person)
        hold(world["policy"], person)
    client.force_login(admin_user)
    data = form_of(client, world["policy"])
    data[f"{SUBJECTS}-0-group"] = str(world["audit"].pk)
    moved = PolicySubjectSet(
        policy=world["policy"],
        purpose=PolicySubjectSet.Purpose.ALLOWED_TARGET,
        subject_type=SubjectType.GROUP_MEMBERS,
        group=world["audit"],
    )

    # the saved policy, holders leaving (count, names), other policies, newly in scope
    with django_assert_num_queries(5):
        whatif = policy_whatif(policy=world["policy"], subjects=[moved])
    # the whole page: the change form as a save would validate and render it, plus the five
    with django_assert_max_num_queries(30):
        response = client.post(change_url(world["policy"]), data)

    assert whatif.losing == response.context["whatif"].losing == people + 2


def test_the_service_alone_reads_unsaved_subject_sets(world):
    policy = world["policy"]
    subject = PolicySubjectSet(
        policy=policy,
        purpose=PolicySubjectSet.Purpose.ALLOWED_TARGET,
        subject_type=SubjectType.SINGLE_USER,
        user=world["cat"],
    )

    whatif = policy_whatif(policy=policy, subjects=[subject])

    assert (whatif.losing, whatif.gaining) == (2, 1)
