"""An API application's service principal is a directory user, but no rule assigns it."""

import pytest
from django.urls import reverse

from api import tokens
from directory.rules import includes, parse_rule
from entitlements.selectors import policy_applies_to, rule_preview
from entitlements.services.automatic import automatic_policies_evaluate
from tests.factories import UserFactory
from tests.rules.conftest import automatic_policy

pytestmark = pytest.mark.django_db
EVERYONE = "user.accountEnabled -eq true"


def principal(name="Payroll sync"):
    return tokens.application_register(
        actor=None, display_name=name, permissions=[]
    ).service_principal


def test_a_rule_matching_everyone_assigns_the_people_and_not_the_applications():
    person = UserFactory(display_name="Pat Person")
    robot = principal()
    _package, policy, _resource = automatic_policy(EVERYONE)

    automatic_policies_evaluate()

    assert person.assignments.filter(assignment_policy=policy).exists()
    assert not robot.assignments.exists()


def test_a_negated_rule_still_leaves_the_applications_out():
    person = UserFactory(department="Sales")
    robot = principal()
    _package, policy, _resource = automatic_policy('-not (user.department -eq "Engineering")')

    automatic_policies_evaluate()

    assert person.assignments.filter(assignment_policy=policy).exists()
    assert not robot.assignments.exists()


def test_in_python_the_rule_includes_a_person_and_not_an_application():
    person = UserFactory()
    robot = principal()
    rule = parse_rule(EVERYONE)
    _package, policy, _resource = automatic_policy(EVERYONE)

    assert includes(rule, person) and rule.matches(robot)
    assert not includes(rule, robot)
    assert policy_applies_to(policy, person, set())
    assert not policy_applies_to(policy, robot, set())


def test_the_preview_neither_counts_nor_names_the_applications(client, admin_user):
    UserFactory(display_name="Pat Person")
    principal("ReviewerRW")
    expected = rule_preview(rule=parse_rule(EVERYONE))
    client.force_login(admin_user)

    data = client.get(
        reverse("admin:entitlements_assignmentpolicy_preview"), {"rule": EVERYONE, "policy": ""}
    ).json()

    assert "ReviewerRW" not in data["names"]
    assert "Pat Person" in data["names"]
    assert data["count"] == expected.count == 2  # Pat and the admin
