"""The benchmark command, at a tiny size."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from directory.models import User
from entitlements.models import Assignment, AuditEvent
from reviews.models import ReviewInstance

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reviewers", ["specific", "self"])
def test_the_benchmark_times_creating_and_applying_a_review_and_leaves_nothing(reviewers):
    before = (User.objects.count(), Assignment.objects.count(), AuditEvent.objects.count())
    out = StringIO()

    call_command("bench_reviews", items=20, batch_size=7, reviewers=reviewers, stdout=out)

    text = out.getvalue()
    assert re.search(r"Created a review instance with 20 items: \d+\.\d\d s", text)
    assert re.search(r"Applied 20 decisions \(10 removed, 10 kept\): \d+\.\d\d s", text)
    assert "rolled back" in text
    assert not ReviewInstance.objects.exists()
    assert (User.objects.count(), Assignment.objects.count(), AuditEvent.objects.count()) == before
