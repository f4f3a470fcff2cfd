"""Rules at the edges: nested too deeply is a positioned error, never a crash."""

import pytest
from django.urls import reverse

from directory.models import User
from directory.rules import MAX_RULE_DEPTH, RuleSyntaxError, parse_rule
from tests.factories import AccessPackageFactory
from tests.rules.test_api import URL, automatic_body

SALES = 'user.department -eq "Sales"'
NOT = "-not "


@pytest.mark.django_db
def test_a_rule_nested_as_deep_as_allowed_is_read_printed_and_queried():
    rule = parse_rule(NOT * MAX_RULE_DEPTH + SALES)

    assert parse_rule(str(rule)) == rule
    # The SQL form compiles and runs (nobody is in the test database's directory).
    assert not User.objects.filter(rule.to_q()).exists()


@pytest.mark.parametrize(
    "text",
    [
        NOT * 400 + SALES,
        "-not (" * 400 + SALES + ")" * 400,
        ("-not (" + SALES + " -or ") * 60 + SALES + ")" * 60,
    ],
    ids=["400 -not", "400 -not (", "60 nested -or"],
)
def test_a_rule_nested_too_deeply_is_refused_where_it_gets_too_deep(text):
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rule(text)

    assert raised.value.message.startswith("The rule is nested too deeply")
    assert 0 < raised.value.position < len(text)


def test_one_level_too_deep_points_at_the_first_operator_beyond_the_limit():
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rule(NOT * (MAX_RULE_DEPTH + 1) + SALES)

    assert raised.value.position == len(NOT) * MAX_RULE_DEPTH
    assert (raised.value.line, raised.value.column) == (1, len(NOT) * MAX_RULE_DEPTH + 1)


@pytest.mark.django_db
def test_the_admin_preview_answers_a_too_deep_rule_with_the_error(client, admin_user):
    client.force_login(admin_user)

    response = client.get(
        reverse("admin:entitlements_assignmentpolicy_preview"),
        {"rule": NOT * 500 + SALES, "policy": ""},
    )

    assert response.status_code == 200
    assert response.json()["error"].startswith("The rule is nested too deeply")


@pytest.mark.django_db
def test_the_api_answers_a_too_deep_rule_with_a_400(client, admin_user):
    client.force_login(admin_user)
    package = AccessPackageFactory()

    response = client.post(
        URL, automatic_body(package, rule=NOT * 400 + SALES), content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
    assert not package.assignment_policies.exists()
