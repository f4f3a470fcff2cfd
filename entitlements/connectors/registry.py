"""Which connector serves a resource: its connected system's kind names the class."""

from django.utils.translation import gettext as _

from entitlements.models import ConnectedSystem

from .base import ConnectorError
from .builtin import BuiltinConnector
from .ldap import LdapConnector

# kind -> a callable taking the ConnectedSystem row (a Connector subclass). SCIM registers
# its own with register_connector_kind().
CONNECTOR_KINDS = {
    ConnectedSystem.Kind.BUILTIN: BuiltinConnector,
    ConnectedSystem.Kind.LDAP: LdapConnector,
}
_instances = {}


def register_connector_kind(kind, connector_class):
    """Make ``connector_class(system)`` serve every connected system of ``kind``."""
    CONNECTOR_KINDS[str(kind)] = connector_class


def connector_for(resource):
    """The connector of ``resource``'s connected system; ConnectorError when there is none."""
    system = resource.connected_system
    if not system.enabled:
        raise ConnectorError(
            _("%(system)s is disabled; %(resource)s waits until it is enabled again.")
            % {"system": system.name, "resource": resource.display_name}
        )
    return connector_for_system(system)


def connector_for_system(system):
    """The connector serving ``system`` (enabled or not: the admin tests a disabled one)."""
    factory = CONNECTOR_KINDS.get(system.kind)
    if factory is None:
        raise ConnectorError(
            _("No connector serves %(kind)s systems such as %(system)s.")
            % {"kind": system.kind, "system": system.name}
        )
    # One instance per system and settings version: an edit in the admin takes effect.
    key = (factory, system.pk, system.modified)
    if key not in _instances:
        if len(_instances) > 256:
            _instances.clear()
        _instances[key] = factory(system)
    return _instances[key]
