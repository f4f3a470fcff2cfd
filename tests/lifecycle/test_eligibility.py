"""Who may request a package under which policy, and why not, in words a user understands."""

import pytest

from directory.models import ConnectedOrganization, User
from entitlements import selectors
from entitlements.models import (
    AssignmentRequest,
    AssignmentState,
    RequestState,
    RequestType,
    Resource,
)
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    ConnectedOrganizationFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_member,
    add_subject,
    grant_role,
)
from tests.lifecycle.requests_setup import give_assignment, open_policy, package_with_roles

pytestmark = pytest.mark.django_db


TARGET = "allowedTarget"


def guest(org=None, **kw):
    return UserFactory(user_type=User.UserType.GUEST, connected_organization=org, **kw)


def names(policies):
    return sorted(p.display_name for p in policies)


# --- scope and priority ---------------------------------------------------------------


def test_a_member_may_request_under_an_all_members_policy(requester):
    policy = open_policy()

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.can_request
    assert result.policies == [policy]
    assert result.reasons == []


def test_a_guest_is_not_in_the_scope_of_an_all_members_policy():
    policy = open_policy(package_with_roles(catalog=CatalogFactory(is_externally_visible=True)))

    result = selectors.eligibility(user=guest(), access_package=policy.access_package)

    assert not result.can_request
    assert result.reasons == ["You are not in the scope of any policy of this access package."]


def test_a_specific_users_policy_applies_to_a_named_user_and_to_members_of_a_named_group(
    requester, outsider
):
    policy = open_policy(allowed_target_scope="specificDirectoryUsers")
    group = GroupFactory()
    add_subject(policy, TARGET, "singleUser", user=requester)
    add_subject(policy, TARGET, "groupMembers", group=group)
    member = UserFactory()
    add_member(group, member)
    package = policy.access_package

    assert selectors.eligibility(user=requester, access_package=package).policies == [policy]
    assert selectors.eligibility(user=member, access_package=package).policies == [policy]
    assert not selectors.eligibility(user=outsider, access_package=package).can_request


def test_only_the_most_specific_applicable_policies_are_offered(requester):
    package = package_with_roles()
    PolicyFactory(
        access_package=package, display_name="Everyone", allowed_target_scope="allDirectoryUsers"
    )
    PolicyFactory(access_package=package, display_name="Members")
    for name in ("Team A", "Team B"):
        specific = PolicyFactory(
            access_package=package, display_name=name, allowed_target_scope="specificDirectoryUsers"
        )
        add_subject(specific, TARGET, "singleUser", user=requester)

    mine = selectors.eligibility(user=requester, access_package=package)
    someone_else = selectors.eligibility(user=UserFactory(), access_package=package)

    assert names(mine.policies) == ["Team A", "Team B"]
    assert names(someone_else.policies) == ["Members"]


def test_all_users_comes_before_all_external_users_for_a_guest():
    package = package_with_roles(catalog=CatalogFactory(is_externally_visible=True))
    PolicyFactory(
        access_package=package, display_name="External", allowed_target_scope="allExternalUsers"
    )
    PolicyFactory(
        access_package=package, display_name="All", allowed_target_scope="allDirectoryUsers"
    )

    result = selectors.eligibility(user=guest(), access_package=package)

    assert names(result.policies) == ["All"]


def test_a_specific_connected_organization_policy_applies_to_that_organizations_guests():
    partner, other = ConnectedOrganizationFactory(), ConnectedOrganizationFactory()
    package = package_with_roles(catalog=CatalogFactory(is_externally_visible=True))
    policy = open_policy(package, allowed_target_scope="specificConnectedOrganizationUsers")
    add_subject(policy, TARGET, "connectedOrganizationMembers", connected_organization=partner)

    assert selectors.eligibility(user=guest(partner), access_package=package).can_request
    assert not selectors.eligibility(user=guest(other), access_package=package).can_request


def test_all_configured_connected_organizations_leaves_out_proposed_ones():
    configured = ConnectedOrganizationFactory()
    proposed = ConnectedOrganizationFactory(state=ConnectedOrganization.State.PROPOSED)
    package = package_with_roles(catalog=CatalogFactory(is_externally_visible=True))
    open_policy(package, allowed_target_scope="allConfiguredConnectedOrganizationUsers")

    assert selectors.eligibility(user=guest(configured), access_package=package).can_request
    assert not selectors.eligibility(user=guest(proposed), access_package=package).can_request
    assert not selectors.eligibility(user=UserFactory(), access_package=package).can_request


# --- why not --------------------------------------------------------------------------


def test_it_says_the_catalog_is_disabled(requester):
    catalog = CatalogFactory(display_name="Finance", state="unpublished")
    policy = open_policy(package_with_roles(catalog=catalog))

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == [
        "The catalog Finance is disabled, so its access packages cannot be requested."
    ]


def test_a_guest_cannot_request_from_a_catalog_not_enabled_for_external_users():
    catalog = CatalogFactory(display_name="Internal", is_externally_visible=False)
    policy = open_policy(
        package_with_roles(catalog=catalog), allowed_target_scope="allDirectoryUsers"
    )

    result = selectors.eligibility(user=guest(), access_package=policy.access_package)

    assert result.reasons == [
        "The catalog Internal is not enabled for users from outside the organization."
    ]


@pytest.mark.parametrize(
    "switches",
    [{"allowed_target_scope": "notSpecified"}, {"enable_targets_to_self_add_access": False}],
)
def test_it_says_requests_are_turned_off_when_no_policy_lets_users_request(requester, switches):
    policy = open_policy(**switches)

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == [
        "Requests are turned off for this access package; an administrator assigns it directly."
    ]


def test_it_says_the_user_already_has_the_package(requester):
    policy = open_policy()
    give_assignment(requester, policy.access_package, policy)

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == ["You already have this access package."]


def test_it_says_a_request_is_already_open(requester):
    policy = open_policy()
    AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=requester,
        target=requester,
        request_type=RequestType.USER_ADD,
        state=RequestState.PENDING_APPROVAL,
    )

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert not result.can_request
    assert result.reasons[0].startswith(
        "There is already an open request for this access package (yours, pending approval, "
    )


def test_an_incompatible_package_held_blocks_the_request(requester):
    policy = open_policy()
    payments = AccessPackageFactory(display_name="Payments approval")
    policy.access_package.incompatible_access_packages.add(payments)
    give_assignment(requester, payments)

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == [
        "This access package is incompatible with the access package Payments approval, "
        "which you already have (separation of duties)."
    ]


def test_an_ended_assignment_of_an_incompatible_package_does_not_block(requester):
    policy = open_policy()
    payments = AccessPackageFactory()
    policy.access_package.incompatible_access_packages.add(payments)
    give_assignment(requester, payments, state=AssignmentState.EXPIRED)

    assert selectors.eligibility(user=requester, access_package=policy.access_package).can_request


def test_an_incompatible_group_held_directly_blocks_the_request(requester):
    policy = open_policy()
    auditors = GroupFactory(display_name="Auditors")
    policy.access_package.incompatible_groups.add(auditors)
    add_member(auditors, requester)

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == [
        "This access package is incompatible with the group Auditors, "
        "which you already have (separation of duties)."
    ]


def test_an_incompatible_group_delivered_by_another_package_blocks_the_request(requester):
    policy = open_policy()
    resource = GroupResourceFactory(group=GroupFactory(display_name="Auditors"))
    other = AccessPackageFactory(catalog=resource.catalog)
    grant_role(other, resource.roles.get(origin_id="Member"))
    policy.access_package.incompatible_groups.add(resource.group)

    give_assignment(requester, other, grants_delivered=False)
    assert selectors.eligibility(user=requester, access_package=policy.access_package).can_request

    other.assignments.get().grants.update(state="delivered")
    result = selectors.eligibility(user=requester, access_package=policy.access_package)
    assert "the group Auditors" in result.reasons[0]


def test_a_disabled_user_is_never_eligible():
    policy = open_policy(allowed_target_scope="allDirectoryUsers")

    result = selectors.eligibility(
        user=UserFactory(is_active=False), access_package=policy.access_package
    )

    assert result.reasons == ["Your account is disabled."]
    assert not result.policies


def test_a_hidden_package_is_not_listed_but_is_requestable_through_its_link(requester):
    policy = open_policy(package_with_roles(is_hidden=True))

    assert selectors.eligibility(user=requester, access_package=policy.access_package).can_request
    assert policy.access_package not in selectors.requestable_packages(user=requester)


# --- lists ----------------------------------------------------------------------------


def test_requestable_packages_lists_what_a_policy_lets_the_user_request(requester):
    mine = open_policy(package_with_roles(display_name="Mine")).access_package
    open_policy(package_with_roles(display_name="Nobody's"), allowed_target_scope="notSpecified")
    named = open_policy(allowed_target_scope="specificDirectoryUsers")
    add_subject(named, TARGET, "singleUser", user=UserFactory())
    open_policy(package_with_roles(catalog=CatalogFactory(state="unpublished")))

    assert list(selectors.requestable_packages(user=requester)) == [mine]


def test_requestable_packages_for_a_guest_need_a_catalog_enabled_for_external_users():
    org = ConnectedOrganizationFactory()
    visible = package_with_roles(catalog=CatalogFactory(is_externally_visible=True))
    hidden_from_guests = package_with_roles()
    for package in (visible, hidden_from_guests):
        open_policy(package, allowed_target_scope="allConfiguredConnectedOrganizationUsers")

    assert list(selectors.requestable_packages(user=guest(org))) == [visible]
    assert list(selectors.requestable_packages(user=UserFactory())) == []


def test_requestable_packages_searches_names_descriptions_and_resource_names(requester):
    by_name = open_policy(package_with_roles(display_name="Sales CRM")).access_package
    by_text = open_policy(package_with_roles(description="For the sales team")).access_package
    by_resource = open_policy(package_with_roles()).access_package
    Resource.objects.filter(roles__role_scopes__access_package=by_resource).update(
        display_name="Sales shared drive"
    )
    open_policy(package_with_roles(display_name="Engineering"))

    found = selectors.requestable_packages(user=requester, search=" sales ")

    assert set(found) == {by_name, by_text, by_resource}


def test_requestable_packages_takes_one_query_whatever_the_data(
    requester, django_assert_num_queries
):
    for n in range(30):
        policy = open_policy(package_with_roles(roles=2, display_name=f"Package {n:02}"))
        add_subject(policy, TARGET, "groupMembers", group=GroupFactory())

    with django_assert_num_queries(1):
        found = list(selectors.requestable_packages(user=requester, search="Package"))

    assert len(found) == 30


def test_direct_reports_for_on_behalf_lists_the_managers_reports_in_scope(manager, requester):
    policy = open_policy(enable_on_behalf_requestors_to_add_access=True)
    add_subject(policy, "onBehalfRequestor", "targetManager", manager_level=1)
    UserFactory(manager=manager, is_active=False)
    UserFactory(manager=manager, user_type=User.UserType.GUEST)
    UserFactory()

    reports = selectors.direct_reports_for_on_behalf(
        user=manager, access_package=policy.access_package
    )

    assert list(reports) == [requester]


def test_no_direct_reports_are_offered_when_the_policy_does_not_allow_on_behalf(manager, requester):
    policy = open_policy()
    add_subject(policy, "onBehalfRequestor", "targetManager", manager_level=1)

    assert not selectors.direct_reports_for_on_behalf(
        user=manager, access_package=policy.access_package
    ).exists()


def test_user_requests_lists_requests_for_and_by_the_user_newest_first(manager, requester):
    policy = open_policy()
    first = AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=requester,
        target=requester,
        request_type=RequestType.USER_ADD,
        state=RequestState.DENIED,
    )
    second = AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=manager,
        target=UserFactory(),
        request_type=RequestType.ON_BEHALF_ADD,
        state=RequestState.DENIED,
    )

    assert list(selectors.user_requests(user=requester)) == [first]
    assert list(selectors.user_requests(user=manager)) == [second]


def test_user_assignments_splits_active_from_ended(requester):
    active = give_assignment(requester, package_with_roles())
    ended = give_assignment(requester, package_with_roles(), state=AssignmentState.EXPIRED)

    assert list(selectors.user_assignments(user=requester)) == [active]
    assert list(selectors.user_assignments(user=requester, active=False)) == [ended]
