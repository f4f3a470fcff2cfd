"""Directory import at size: 10,000 people in a real OpenLDAP slapd, imported, imported again
(nothing changes), and imported after 100 of them left (exactly they are disabled, and their
access ends through the leaver path)."""

import secrets
import time

import pytest

from demo.ldapserver import LdapServer
from directory.models import User
from entitlements.models import AssignmentState, AuditEvent, ConnectedSystem
from identity.importing import directory_import_run
from identity.models import DirectoryImport
from tests.factories import GroupResourceFactory
from tests.ldapserver import require_slapd
from tests.lifecycle.assignment_helpers import assign, package_giving

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.timeout(3600)]

PEOPLE = 10_000
LEAVERS = 100


def uid(i):
    return f"p{i:05d}"


def people_ldif(server):
    # Reports before their managers (person i reports to (i - 1) // 10), so that the import
    # meets most managers after the people who name them.
    entries = []
    for i in reversed(range(PEOPLE)):
        lines = [
            f"dn: {server.person_dn(uid(i))}",
            "objectClass: inetOrgPerson",
            f"cn: Person {i}",
            f"sn: {i}",
            f"uid: {uid(i)}",
            f"mail: {uid(i)}@big.example.org",
            f"displayName: Person {i}",
            f"departmentNumber: Department {i % 25}",
            f"title: Title {i % 40}",
            f"employeeNumber: E{i}",
        ]
        if i:
            lines.append(f"manager: {server.person_dn(uid((i - 1) // 10))}")
        entries.append("\n".join(lines) + "\n\n")
    return "".join(entries)


@pytest.fixture(scope="module")
def big_directory():
    require_slapd()
    server = LdapServer(password=f"pw-{secrets.token_hex(8)}")
    server.start(preload=people_ldif(server))
    try:
        yield server
    finally:
        server.stop()


def timed(directory_import, **kwargs):
    directory_import.refresh_from_db()
    started = time.monotonic()
    report = directory_import_run(directory_import=directory_import, **kwargs)
    return report, time.monotonic() - started


def test_ten_thousand_people_are_imported_once_and_a_hundred_leavers_exactly_disabled(
    big_directory, monkeypatch, capsys
):
    monkeypatch.setenv("BIG_LDAP_PASSWORD", big_directory.password)
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="Big OpenLDAP",
        settings={
            "url": big_directory.url,
            "bind_dn": big_directory.admin_dn,
            "user_base": big_directory.people_dn,
            "timeout": 60,
        },
        secret_reference="BIG_LDAP_PASSWORD",
    )
    directory_import = DirectoryImport.objects.create(name="Big", system=system)
    timings = []

    report, seconds = timed(directory_import)
    timings.append(("first run", seconds, report))

    assert report.counts["created"] == PEOPLE and report.counts["errors"] == 0
    assert User.objects.filter(email__endswith="@big.example.org").count() == PEOPLE
    reports_of = {u.email: u for u in User.objects.filter(email__in=[f"{uid(1)}@big.example.org"])}
    boss = User.objects.get(email=f"{uid(0)}@big.example.org")
    assert reports_of[f"{uid(1)}@big.example.org"].manager == boss
    assert User.objects.filter(
        manager__isnull=False, email__endswith="@big.example.org"
    ).count() == (PEOPLE - 1)
    events = AuditEvent.objects.count()

    report, seconds = timed(directory_import)
    timings.append(("second run", seconds, report))

    assert {k: v for k, v in report.as_dict()["counts"].items() if v} == {"unchanged": PEOPLE}
    assert AuditEvent.objects.count() == events

    leavers = [uid(i) for i in range(PEOPLE - LEAVERS, PEOPLE)]  # people with no reports
    resource = GroupResourceFactory()
    package, policy = package_giving(resource)
    with_access = [User.objects.get(email=f"{name}@big.example.org") for name in leavers[:3]]
    assignments = [assign(person, package, policy) for person in with_access]
    conn = big_directory.connection()
    try:
        for name in leavers:
            assert conn.delete(big_directory.person_dn(name)), conn.result
    finally:
        conn.unbind()

    report, seconds = timed(directory_import)
    timings.append(("after 100 left", seconds, report))

    counts = {k: v for k, v in report.as_dict()["counts"].items() if v}
    assert counts == {"disabled": LEAVERS, "unchanged": PEOPLE - LEAVERS}
    gone = User.objects.filter(email__in=[f"{name}@big.example.org" for name in leavers])
    assert not gone.filter(is_active=True).exists()
    assert User.objects.filter(email__endswith="@big.example.org", is_active=False).count() == (
        LEAVERS
    )
    for assignment in assignments:
        assignment.refresh_from_db()
        assert assignment.state == AssignmentState.EXPIRED
    disabled = AuditEvent.objects.filter(action="user.disabled", target__in=gone)
    assert disabled.count() == LEAVERS
    assert {e.data["source_name"] for e in disabled} == {"Big"}

    with capsys.disabled():
        for label, seconds, report in timings:
            print(
                f"\ndirectory import, {PEOPLE:,} people in slapd, {label}: {seconds:.1f} s "
                f"(read {report.seconds['read']:.1f} s, apply {report.seconds['apply']:.1f} s)"
            )
