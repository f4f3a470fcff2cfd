"""Properties of the rule parser: canonical text reads back as the same rule, and the Python
form of a rule selects exactly the people its SQL form selects (on PostgreSQL and SQLite)."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.models import User
from directory.rules import parse_rule
from tests.rules.strategies import people, rules


@given(rules)
@settings(max_examples=400, deadline=None)
def test_the_canonical_text_of_a_random_rule_reads_back_as_the_same_rule(rule):
    assert parse_rule(str(rule)) == rule


@given(rules, st.sampled_from([str.upper, str.lower, str.title]))
@settings(max_examples=100, deadline=None)
def test_operators_and_attributes_are_read_whatever_their_case(rule, change_case):
    text = str(rule)
    # Change the case of everything outside the quoted values.
    parts = text.split('"')
    shouted = '"'.join(change_case(p) if i % 2 == 0 else p for i, p in enumerate(parts))
    if "`" not in text:  # an escaped quote would shift the parts
        assert parse_rule(shouted) == rule


@pytest.mark.django_db
@given(rules, st.data())
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_random_person_matches_a_random_rule_exactly_when_its_sql_selects_them(rule, data):
    rows = data.draw(st.lists(people(rule), min_size=1, max_size=6))
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(**{**row, "email": f"{row['email']}.{i}@example.com"})
            for i, row in enumerate(rows)
        )
        expected = {u.pk for u in users if rule.matches(u)}
        selected = set(
            User.objects.filter(pk__in=[u.pk for u in users])
            .filter(rule.to_q())
            .values_list("pk", flat=True)
        )
        transaction.set_rollback(True)
    assert selected == expected, str(rule)
