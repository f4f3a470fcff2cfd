from tests.ldapserver import _ldap_process, ldap_server, ldap_system  # noqa: F401
from tests.scimserver import scim_server, scim_server_process  # noqa: F401
