"""The lifecycle benchmark command runs end to end at a tiny size and leaves nothing behind."""

from io import StringIO

import pytest
from django.core.management import call_command

from directory.models import User
from entitlements.models import Assignment, Catalog

pytestmark = pytest.mark.django_db


def test_the_benchmark_delivers_expires_and_cleans_up_after_itself():
    out = StringIO()

    call_command("bench_lifecycle", requests=5, expire=5, stdout=out)

    printed = out.getvalue()
    assert "submit + approve + deliver: 5 requests" in printed
    assert "5 delivered, 5 group members" in printed
    assert "expire: 5 assignments ending in the same minute" in printed
    assert "0 group members left" in printed
    assert not Catalog.objects.filter(display_name__startswith="bench-").exists()
    assert not User.objects.filter(email__startswith="bench-").exists()
    assert not Assignment.objects.exists()
