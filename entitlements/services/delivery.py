"""Connectors: how one resource role is granted to, or taken from, one user.

A connector serves one origin system (OriginSystem). It has three idempotent methods:
``grant(role, user)`` and ``revoke(role, user)`` (granting a role the user holds, or revoking
one they do not hold, does nothing) and ``holders(role)``, the ids of the users who hold the
role now, for reconciliation. ``revoke_many(role, users)`` may be overridden to revoke for a
batch of users in one call (expiry revokes thousands at once). Failures the admin should see
are raised as ``ConnectorError``; delivery records them on the grant and the worker retries.

``BuiltinConnector`` writes the local directory (directory.models) and this product's own
admin roles. Its rows carry ``source=entitlement``: a grant leaves a membership given
directly as it is, and a revoke deletes only what an access package gave.

Adding an LDAP or SCIM connector:

1. add the origin system to ``entitlements.models.OriginSystem`` (e.g. ``LDAP_GROUP``), so
   resources can name it;
2. subclass ``Connector`` and implement the three methods against the external system, raising
   ``ConnectorError`` for anything that should be retried or shown as a delivery failure;
3. register an instance at start-up, e.g. in an ``AppConfig.ready()``:
   ``register_connector(OriginSystem.LDAP_GROUP, LdapConnector.from_settings())``.

Delivery runs a connector inside a transaction that holds the assignment's row lock, so a
connector must not open its own database transaction on another connection for the same rows.
"""

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext as _

from directory.models import (
    AppRole,
    AppRoleAssignment,
    GrantSource,
    GroupMembership,
    SiteRoleAssignment,
)
from entitlements.models import CATALOG_SCOPED_ROLES, AdminRole, OriginSystem, RoleAssignment


class ConnectorError(Exception):
    """A grant or revoke that did not happen; the message is kept on the grant for the admin."""


class Connector:
    """Grants and revokes the roles of one origin system's resources. Every method is idempotent."""

    def grant(self, role, user):
        raise NotImplementedError

    def revoke(self, role, user):
        raise NotImplementedError

    def holders(self, role):
        """The ids of the users who hold ``role`` now, whoever gave it."""
        raise NotImplementedError

    def revoke_many(self, role, users):
        """Revoke ``role`` from each of ``users``; a connector may do it in one call."""
        for user in users:
            self.revoke(role, user)


class BuiltinConnector(Connector):
    """Writes the local directory: group memberships, app roles, site roles and admin roles.

    Each grant and revoke is one statement, and every check that can fail runs before it, so
    a failure never leaves the caller's transaction broken.
    """

    def grant(self, role, user):
        resource = role.resource
        origin = resource.origin_system
        if origin == OriginSystem.GROUP:
            self._check_choice(role, GroupMembership.Role)
            GroupMembership.objects.bulk_create(
                [
                    GroupMembership(
                        group_id=resource.group_id,
                        user_id=user.pk,
                        role=role.origin_id,
                        source=GrantSource.ENTITLEMENT,
                    )
                ],
                ignore_conflicts=True,
            )
        elif origin == OriginSystem.APPLICATION:
            AppRoleAssignment.objects.bulk_create(
                [
                    AppRoleAssignment(
                        app_role=self._app_role(role),
                        user_id=user.pk,
                        source=GrantSource.ENTITLEMENT,
                    )
                ],
                ignore_conflicts=True,
            )
        elif origin == OriginSystem.SITE:
            self._check_choice(role, SiteRoleAssignment.Role)
            SiteRoleAssignment.objects.bulk_create(
                [
                    SiteRoleAssignment(
                        site_id=resource.site_id,
                        user_id=user.pk,
                        role=role.origin_id,
                        source=GrantSource.ENTITLEMENT,
                    )
                ],
                ignore_conflicts=True,
            )
        elif origin == OriginSystem.DIRECTORY_ROLE:
            self._check_admin_role(role)
            RoleAssignment.objects.bulk_create(
                [
                    RoleAssignment(
                        role=role.origin_id,
                        principal_id=user.pk,
                        catalog_id=resource.role_catalog_id,
                        source=RoleAssignment.Source.ENTITLEMENT,
                    )
                ],
                ignore_conflicts=True,
            )
        else:
            raise ConnectorError(_cannot_deliver(origin))

    def revoke(self, role, user):
        self._held_by_entitlement(role).filter(**{self._user_field(role): user.pk}).delete()

    def revoke_many(self, role, users):
        field = self._user_field(role)
        self._held_by_entitlement(role).filter(**{f"{field}__in": [u.pk for u in users]}).delete()

    def holders(self, role):
        rows = self._held(role)
        return set(rows.values_list(self._user_field(role), flat=True))

    def _held(self, role):
        """Every row that gives ``role``, whoever gave it."""
        resource = role.resource
        origin = resource.origin_system
        if origin == OriginSystem.GROUP:
            return GroupMembership.objects.filter(group_id=resource.group_id, role=role.origin_id)
        if origin == OriginSystem.APPLICATION:
            return AppRoleAssignment.objects.filter(app_role=self._app_role(role))
        if origin == OriginSystem.SITE:
            return SiteRoleAssignment.objects.filter(site_id=resource.site_id, role=role.origin_id)
        if origin == OriginSystem.DIRECTORY_ROLE:
            return RoleAssignment.objects.filter(
                role=role.origin_id, catalog_id=resource.role_catalog_id
            )
        raise ConnectorError(_cannot_deliver(origin))

    def _held_by_entitlement(self, role):
        return self._held(role).filter(source=GrantSource.ENTITLEMENT)

    @staticmethod
    def _user_field(role):
        if role.resource.origin_system == OriginSystem.DIRECTORY_ROLE:
            return "principal_id"
        return "user_id"

    @staticmethod
    def _check_choice(role, choices):
        if role.origin_id not in choices.values:
            raise ConnectorError(
                _("%(resource)s has no role “%(role)s”; expected one of %(roles)s.")
                % {
                    "resource": role.resource.display_name,
                    "role": role.origin_id,
                    "roles": ", ".join(choices.values),
                }
            )

    @staticmethod
    def _check_admin_role(role):
        if role.origin_id not in AdminRole.values:
            raise ConnectorError(
                _("“%(role)s” is not an admin role of this product.") % {"role": role.origin_id}
            )
        scoped = role.origin_id in CATALOG_SCOPED_ROLES
        if scoped != (role.resource.role_catalog_id is not None):
            names = {"role": role.display_name, "resource": role.resource.display_name}
            if scoped:
                raise ConnectorError(_("%(role)s of %(resource)s needs a catalog.") % names)
            raise ConnectorError(_("%(role)s of %(resource)s needs no catalog.") % names)

    @staticmethod
    def _app_role(role):
        """The application's AppRole this resource role stands for (created for Default Access)."""
        application_id = role.resource.application_id
        if role.origin_id == AppRole.DEFAULT_ACCESS:
            app_role, _created = AppRole.objects.get_or_create(
                application_id=application_id, display_name=AppRole.DEFAULT_ACCESS
            )
            return app_role
        try:
            return AppRole.objects.get(application_id=application_id, pk=role.origin_id)
        except (AppRole.DoesNotExist, ValidationError, ValueError) as exc:
            raise ConnectorError(
                _("The application of %(resource)s has no app role %(role)s (%(id)s).")
                % {
                    "resource": role.resource.display_name,
                    "role": role.display_name,
                    "id": role.origin_id,
                }
            ) from exc


def _cannot_deliver(origin):
    return _("The built-in connector cannot deliver %(origin)s resources.") % {"origin": origin}


_builtin = BuiltinConnector()

# origin system -> connector. Replace or extend with register_connector().
CONNECTORS = {
    OriginSystem.GROUP: _builtin,
    OriginSystem.APPLICATION: _builtin,
    OriginSystem.SITE: _builtin,
    OriginSystem.DIRECTORY_ROLE: _builtin,
}


def register_connector(origin_system, connector):
    """Make ``connector`` deliver the roles of every resource from ``origin_system``."""
    CONNECTORS[str(origin_system)] = connector


def connector_for(resource):
    """The connector that delivers ``resource``'s roles; ConnectorError when there is none."""
    try:
        return CONNECTORS[resource.origin_system]
    except KeyError:
        raise ConnectorError(
            _("No connector delivers %(origin)s resources such as %(resource)s.")
            % {"origin": resource.origin_system, "resource": resource.display_name}
        ) from None


def lock_grants_of(*user_ids):
    """Serialise grant and revoke runs for these users until the transaction ends.

    Revoking checks "does another open assignment still need this role?" and then acts; a
    delivery for the same user between the check and the act would lose its role. Holding a
    per-user transaction lock around both closes that gap without locking the user's row.
    The locks are taken in sorted order, so two batches cannot deadlock on them.
    """
    if connection.vendor != "postgresql" or not user_ids:
        return  # SQLite (the demo) runs one write transaction at a time anyway
    keys = sorted(f"grants:{pk}" for pk in set(user_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM (SELECT k FROM unnest(%s::text[]) AS k ORDER BY k) AS sorted",
            [keys],
        )
