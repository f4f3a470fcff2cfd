"""The connectors benchmark runs end to end at a tiny size, against its own slapd, and leaves
nothing behind."""

from io import StringIO

import pytest
from django.core.management import call_command

from directory.models import User
from entitlements.models import Assignment, Catalog, ConnectedSystem
from tests.ldapserver import require_slapd

pytestmark = pytest.mark.django_db


def test_the_benchmark_delivers_removes_reconciles_and_cleans_up_after_itself():
    require_slapd()
    out = StringIO()

    call_command("bench_connectors", latency=3, expire=5, members=7, stdout=out)

    printed = out.getvalue()
    assert "last approval -> member in the LDAP group: 3 requests, median" in printed
    assert "5 assignments ending in the same minute -> removed from the LDAP group" in printed
    assert "(5 members before, 0 after)" in printed
    assert "drift of a group with 7 members" in printed and "(0 missing, 0 extra)" in printed
    assert not Catalog.objects.filter(display_name__startswith="bench-").exists()
    assert not User.objects.filter(email__startswith="bench-").exists()
    assert not ConnectedSystem.objects.filter(name__startswith="bench-").exists()
    assert not Assignment.objects.exists()
