"""Connectors: how one resource role is granted to, or taken from, one user in one system.

A resource lives in a connected system (``ConnectedSystem``: the built-in directory, an LDAP
server, a SCIM application). The system's kind names the connector class, which is
instantiated per system with its settings (``registry.connector_for``). Delivery calls it with
no database transaction or lock held and with the system's timeout (``base.Connector.call``).

``base``     Connector, ConnectorError (retryable, ``retry_after``), ConnectorTimeout,
             ConnectorRefused (never retried), DiscoveredGroup, system_secret
``builtin``  the built-in directory (directory.models and the product's own admin roles)
``registry`` kind -> connector class, and the connector of a resource
``ldap``     LDAP servers (OpenLDAP, Active Directory) through ldap3

A group of an LDAP or SCIM system is a Resource with ``origin_system`` AadGroup (Graph's word
for a group), ``group`` empty (no local mirror), ``origin_id`` its id in the system (LDAP: the
DN; SCIM: the Group's id) and ``connected_system`` the system. Only a resource of the built-in
directory must point at a local group, application or site (Resource.clean).
"""

from .base import (
    Connector,
    ConnectorError,
    ConnectorRefused,
    ConnectorTimeout,
    DiscoveredGroup,
    system_secret,
)
from .builtin import BuiltinConnector
from .ldap import LdapConnector
from .registry import (
    CONNECTOR_KINDS,
    connector_for,
    connector_for_system,
    register_connector_kind,
)

__all__ = [
    "CONNECTOR_KINDS",
    "BuiltinConnector",
    "Connector",
    "ConnectorError",
    "ConnectorRefused",
    "ConnectorTimeout",
    "DiscoveredGroup",
    "LdapConnector",
    "connector_for",
    "connector_for_system",
    "register_connector_kind",
    "system_secret",
]
