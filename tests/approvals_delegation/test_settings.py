"""APPROVAL_REVOKE_WINDOW_DAYS is read strictly: a bad value stops start-up, naming it."""

import pytest

from tests.foundation.test_settings import run_check


@pytest.mark.parametrize("value", ["a week", "-1"])
def test_a_bad_revoke_window_stops_start_up_with_the_variable_named(value):
    result = run_check(APPROVAL_REVOKE_WINDOW_DAYS=value)

    assert result.returncode != 0
    assert "APPROVAL_REVOKE_WINDOW_DAYS" in result.stderr


def test_a_window_of_zero_days_turning_revoking_off_starts():
    result = run_check(APPROVAL_REVOKE_WINDOW_DAYS="0")

    assert result.returncode == 0, result.stderr
