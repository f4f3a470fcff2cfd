"""The built-in directory: group memberships, app roles, site roles and admin roles.

Its rows carry ``source=entitlement``: a grant leaves a membership given directly as it is,
and a revoke deletes only what an access package gave.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from directory.models import (
    AppRole,
    AppRoleAssignment,
    GrantSource,
    GroupMembership,
    SiteRoleAssignment,
)
from entitlements.models import CATALOG_SCOPED_ROLES, AdminRole, OriginSystem, RoleAssignment

from .base import Connector, ConnectorError


class BuiltinConnector(Connector):
    """Writes the local directory: group memberships, app roles, site roles and admin roles.

    Each grant and revoke is one statement, committed on its own (delivery calls it with no
    transaction open), and every check that can fail runs before it.
    """

    in_thread = False  # it writes this database, on the worker's own connection

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
