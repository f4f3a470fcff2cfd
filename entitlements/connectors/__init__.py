"""Connectors: how one resource role is granted to, or taken from, one user in one system.

A resource lives in a connected system (``ConnectedSystem``: the built-in directory, an LDAP
server, a SCIM application). The system's kind names the connector class, which is
instantiated per system with its settings (``registry.connector_for``). Delivery calls it with
no database transaction or lock held and with the system's timeout (``base.Connector.call``).

``base``     Connector, ConnectorError, ConnectorTimeout
``builtin``  the built-in directory (directory.models and the product's own admin roles)
``registry`` kind -> connector class, and the connector of a resource
"""

from .base import Connector, ConnectorError, ConnectorTimeout
from .builtin import BuiltinConnector
from .registry import CONNECTOR_KINDS, connector_for, register_connector_kind

__all__ = [
    "CONNECTOR_KINDS",
    "BuiltinConnector",
    "Connector",
    "ConnectorError",
    "ConnectorTimeout",
    "connector_for",
    "register_connector_kind",
]
