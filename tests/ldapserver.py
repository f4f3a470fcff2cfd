"""A real OpenLDAP ``slapd`` for the connector tests: a free port, a throw-away database.

Locally a machine without slapd skips these tests; in CI (CI=true) that is a failure.
"""

import secrets

import pytest

from demo.ldapserver import LdapServer, slapd_path
from entitlements.models import ConnectedSystem
from tests.services import _missing

PEOPLE = ["ann", "bob", "cem", "dora", "eve"]


def require_slapd():
    if slapd_path() is None:
        _missing("OpenLDAP's slapd (apt-get install slapd ldap-utils)")


@pytest.fixture(scope="session")
def _ldap_process():
    require_slapd()
    server = LdapServer(password=f"pw-{secrets.token_hex(8)}")  # found in no page by chance
    server.start()
    server.add_people(PEOPLE)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_server(_ldap_process):
    """The session's slapd, running (a test may have stopped it), with its people; groups
    made by a test stay (each test names its own)."""
    if _ldap_process.process is None or _ldap_process.process.poll() is not None:
        _ldap_process.start_process()
    yield _ldap_process
    if _ldap_process.process is None or _ldap_process.process.poll() is not None:
        _ldap_process.start_process()


@pytest.fixture
def ldap_system(db, ldap_server, monkeypatch):
    """A connected system of kind LDAP pointing at the test slapd; its password is read from
    an environment variable named by its secret reference."""
    monkeypatch.setenv("TEST_LDAP_PASSWORD", ldap_server.password)
    return ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="Test OpenLDAP",
        settings=ldap_settings(ldap_server),
        secret_reference="TEST_LDAP_PASSWORD",
    )


def ldap_settings(server, **extra):
    return {
        "url": server.url,
        "bind_dn": server.admin_dn,
        "user_base": server.people_dn,
        "group_base": server.groups_dn,
        "timeout": 5,
        **extra,
    }
