"""Who is in a policy's scope: the Python form and the SQL form of the one rule agree.

Hypothesis builds small random directories (users, groups, memberships, managers, connected
organizations, guests and members) and policies with random allowed target scopes and subject
sets, and every (policy, user) pair gets the same answer from ``policy_applies_to`` (one user,
in Python), from ``users_in_scope`` (one policy, in SQL) and from ``policies_applying_to`` (one
user, in SQL). Each example runs in its own transaction, rolled back at the end.
"""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.models import ConnectedOrganization, GroupMembership, User
from entitlements import selectors
from entitlements.models import AllowedTargetScope, AssignmentPolicy, PolicySubjectSet, SubjectType
from tests.factories import (
    AccessPackageFactory,
    ConnectedOrganizationFactory,
    GroupFactory,
    PolicyFactory,
    UserFactory,
)

Purpose = PolicySubjectSet.Purpose

# Subject types that name someone by a row; the relative ones (managers, sponsors) carry no
# row and must never put anybody in scope.
NAMED = {
    SubjectType.SINGLE_USER: "user",
    SubjectType.GROUP_MEMBERS: "group",
    SubjectType.CONNECTED_ORGANIZATION_MEMBERS: "connected_organization",
}

users = st.lists(
    st.fixed_dictionaries(
        {
            "guest": st.booleans(),
            "active": st.booleans(),
            "org": st.none() | st.integers(0, 2),
            "manager": st.none() | st.integers(0, 4),
            "groups": st.lists(
                st.tuples(st.integers(0, 2), st.sampled_from(GroupMembership.Role.values)),
                max_size=3,
                unique_by=lambda pair: pair[0],
            ),
        }
    ),
    min_size=1,
    max_size=5,
)
subject_sets = st.lists(
    st.tuples(
        st.sampled_from([Purpose.ALLOWED_TARGET, Purpose.ON_BEHALF_REQUESTOR]),
        st.sampled_from(SubjectType.values),
        st.integers(0, 4),
    ),
    max_size=4,
)
directories = st.fixed_dictionaries(
    {
        "orgs": st.lists(
            st.sampled_from(ConnectedOrganization.State.values), min_size=3, max_size=3
        ),
        "users": users,
        "policies": st.lists(
            st.tuples(st.sampled_from(AllowedTargetScope.values), subject_sets),
            min_size=1,
            max_size=3,
        ),
    }
)


def _build(spec):
    orgs = [ConnectedOrganizationFactory(state=state) for state in spec["orgs"]]
    groups = [GroupFactory() for _ in range(3)]
    people = []
    for person in spec["users"]:
        org = orgs[person["org"]] if person["org"] is not None else None
        people.append(
            UserFactory(
                user_type=User.UserType.GUEST if person["guest"] else User.UserType.MEMBER,
                is_active=person["active"],
                connected_organization=org,
            )
        )
    for user, person in zip(people, spec["users"], strict=True):
        if person["manager"] is not None and person["manager"] < len(people):
            user.manager = people[person["manager"]]
            user.save(update_fields=["manager"])
        for group, role in person["groups"]:
            GroupMembership.objects.create(group=groups[group], user=user, role=role)
    package = AccessPackageFactory()
    policies = []
    for scope, sets in spec["policies"]:
        policy = PolicyFactory(access_package=package, allowed_target_scope=scope)
        for purpose, subject_type, index in sets:
            row = {"user": people[index % len(people)], "group": groups[index % 3]}
            row["connected_organization"] = orgs[index % 3]
            field = NAMED.get(subject_type)
            PolicySubjectSet.objects.create(
                policy=policy,
                purpose=purpose,
                subject_type=subject_type,
                **({field: row[field]} if field else {}),
            )
        policies.append(policy)
    return people, policies


@pytest.mark.django_db
@settings(
    max_examples=100,
    derandomize=True,  # the same examples on every run, so CI never flakes on a new one
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=directories)
def test_the_python_and_the_sql_form_of_the_scope_rule_agree(spec):
    with transaction.atomic():
        people, policies = _build(spec)
        policies = list(
            AssignmentPolicy.objects.filter(pk__in=[p.pk for p in policies]).prefetch_related(
                "subject_sets"
            )
        )
        people = list(
            User.objects.filter(pk__in=[u.pk for u in people]).select_related(
                "connected_organization"
            )
        )
        ids = [p.pk for p in policies]
        in_sql = {p.pk: set(selectors.users_in_scope(p)) for p in policies}
        for user in people:
            group_ids = selectors.member_group_ids(user)
            applying = set(
                AssignmentPolicy.objects.filter(
                    selectors.policies_applying_to(user), pk__in=ids
                ).values_list("pk", flat=True)
            )
            for policy in policies:
                in_python = selectors.policy_applies_to(policy, user, group_ids)
                why = (policy.allowed_target_scope, user.user_type, user.connected_organization)
                assert (policy.pk in applying) == in_python, why
                if policy.allowed_target_scope != AllowedTargetScope.NOT_SPECIFIED:
                    assert (user in in_sql[policy.pk]) == (in_python and user.is_active), why
        transaction.set_rollback(True)
