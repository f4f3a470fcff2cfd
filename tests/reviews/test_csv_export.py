"""The review export is safe to open in a spreadsheet, like every CSV export."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine

from reviews.models import Decision
from reviews.services import review_instance_create, review_item_decide
from tests.factories import UserFactory

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/reviews/reviewinstance/"
FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture(autouse=True)
def during_the_review():
    with time_machine.travel(START + timedelta(days=3), tick=False):
        yield


def _rows(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_reviewers_justification_that_looks_like_a_formula_is_exported_as_text(
    admin_client, policy, reviewer
):
    open_assignments(policy, [UserFactory(display_name="Ann")])
    instance = review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )
    review_item_decide(
        actor=reviewer,
        item=instance.items.get(),
        decision=Decision.DENY,
        justification=FORMULA,
        now=START + timedelta(days=3),
    )

    response = admin_client.post(
        CHANGELIST, {"action": "export_items", "_selected_action": [instance.pk]}
    )

    rows = _rows(response)
    assert rows[0][4] == "justification"
    assert rows[1][4] == "'" + FORMULA
    assert response["Content-Type"] == "text/csv; charset=utf-8"
