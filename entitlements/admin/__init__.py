"""The Django admin of the entitlement model; permissions come from entitlements.permissions."""

from . import audit, catalogs, connectors, lifecycle, packages  # noqa: F401  (registers the model admins)
