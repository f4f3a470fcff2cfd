from tests.ldapserver import _ldap_process, ldap_server, ldap_system  # noqa: F401
