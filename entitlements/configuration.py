"""Configuration-time operations shared by the admin, seed_demo and the API.

Adding a resource to a catalog also creates the roles a package can grant from it:
a group's Member and Owner, an application's app roles (or "Default Access"), a site's
Visitor, Member and Owner, and for a directory role the product's catalog roles.

Who may add what follows Entra: a catalog owner adds a group, application or site only if
they own it; directory roles, and anything they do not own, only an administrator adds.
Otherwise a catalog owner could hand out membership of any group (an approvers' group, say)
through a package of their own.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import AppRole, SiteRoleAssignment

from . import permissions
from .audit import audit_record
from .errors import InvalidRequest, PermissionDenied
from .models import (
    CATALOG_SCOPED_ROLES,
    AdminRole,
    Channel,
    OriginSystem,
    Resource,
    ResourceRole,
)

# The field naming the object each origin system adds (as on the admin's add form).
ORIGIN_FIELDS = {
    OriginSystem.GROUP: "group",
    OriginSystem.APPLICATION: "application",
    OriginSystem.SITE: "site",
    OriginSystem.DIRECTORY_ROLE: "role_catalog",
}


def resource_roles_for(resource):
    """The (origin_id, display_name) pairs of the roles a resource offers."""
    if resource.origin_system == OriginSystem.GROUP:
        return [("Member", "Member"), ("Owner", "Owner")]
    if resource.origin_system == OriginSystem.APPLICATION:
        roles = [(str(r.id), r.display_name) for r in resource.application.app_roles.all()]
        return roles or [(AppRole.DEFAULT_ACCESS, AppRole.DEFAULT_ACCESS)]
    if resource.origin_system == OriginSystem.SITE:
        return [(value, str(label)) for value, label in SiteRoleAssignment.Role.choices]
    if resource.origin_system == OriginSystem.DIRECTORY_ROLE:
        if resource.role_catalog_id is None:
            return [(AdminRole.CATALOG_CREATOR.value, str(AdminRole.CATALOG_CREATOR.label))]
        return [(role, str(AdminRole(role).label)) for role in CATALOG_SCOPED_ROLES]
    return []


def resource_origin_id(resource):
    """The id a built-in resource has in its origin system."""
    if resource.origin_system == OriginSystem.GROUP:
        return str(resource.group_id)
    if resource.origin_system == OriginSystem.APPLICATION:
        return str(resource.application_id)
    if resource.origin_system == OriginSystem.SITE:
        return resource.site.url
    if resource.origin_system == OriginSystem.DIRECTORY_ROLE:
        return str(resource.role_catalog_id) if resource.role_catalog_id else "product"
    return resource.origin_id


def resource_default_name(resource):
    for attr in ("group", "application", "site"):
        obj = getattr(resource, attr, None)
        if obj is not None:
            return obj.display_name
    if resource.origin_system == OriginSystem.DIRECTORY_ROLE:
        scope = resource.role_catalog.display_name if resource.role_catalog_id else "all catalogs"
        return f"Admin roles: {scope}"
    return resource.origin_id


@transaction.atomic
def resource_sync_roles(resource):
    """Create the roles the resource offers that are missing; returns the resource's roles."""
    existing = set(resource.roles.values_list("origin_id", flat=True))
    ResourceRole.objects.bulk_create(
        [
            ResourceRole(resource=resource, origin_id=origin_id, display_name=name)
            for origin_id, name in resource_roles_for(resource)
            if origin_id not in existing
        ]
    )
    return list(resource.roles.all())


def resource_add_check(
    *, actor, catalog, origin_system, group=None, application=None, site=None, role_catalog=None
):
    """Raise PermissionDenied (or InvalidRequest when nothing is chosen), naming the field to
    correct, unless ``actor`` may add the object to ``catalog``. ``actor`` None is the system
    itself (the demo seed, benchmarks); the admin form asks this too, to show a field error."""
    if actor is None or permissions.is_superuser(actor):
        return
    if not permissions.can_change_catalog(actor, catalog):
        raise PermissionDenied(
            _("You can add resources only to a catalog you own."), field="catalog"
        )
    if origin_system == OriginSystem.DIRECTORY_ROLE:
        raise PermissionDenied(
            _("Only an administrator can add directory roles to a catalog."),
            field="role_catalog",
        )
    field = ORIGIN_FIELDS.get(origin_system, "origin_system")
    obj = {"group": group, "application": application, "site": site}.get(field)
    if obj is None:
        raise InvalidRequest(_("Choose what to add to the catalog."), field=field)
    if not obj.is_owned_by(actor):
        kind = OriginSystem(origin_system).label.lower()
        raise PermissionDenied(
            _(
                "Only an owner of the %(kind)s “%(name)s” or an administrator can add it to a "
                "catalog. Ask an administrator to add it, or an owner of the %(kind)s to make "
                "you an owner too."
            )
            % {"kind": kind, "name": obj.display_name},
            field=field,
        )


@transaction.atomic
def resource_add(
    *,
    actor,
    catalog,
    origin_system,
    group=None,
    application=None,
    site=None,
    role_catalog=None,
    display_name="",
    description="",
    channel=Channel.SYSTEM,
    now=None,
):
    """Add a group, application, site or directory role to a catalog, with its roles.

    Only someone allowed to (``resource_add_check``) may; adding the same object twice
    returns the existing resource.
    """
    resource_add_check(
        actor=actor,
        catalog=catalog,
        origin_system=origin_system,
        group=group,
        application=application,
        site=site,
        role_catalog=role_catalog,
    )
    resource = Resource(
        catalog=catalog,
        origin_system=origin_system,
        group=group,
        application=application,
        site=site,
        role_catalog=role_catalog,
        description=description,
    )
    resource.origin_id = resource_origin_id(resource)
    resource.display_name = display_name or resource_default_name(resource)
    existing = Resource.objects.filter(
        catalog=catalog, origin_system=origin_system, origin_id=resource.origin_id
    ).first()
    if existing:
        return existing
    resource.full_clean()
    resource.save()
    roles = resource_sync_roles(resource)
    audit_record(
        action="resource.added",
        obj=resource,
        actor=actor,
        channel=channel,
        after=resource.display_name,
        data={
            "catalog": str(catalog.pk),
            "origin_system": origin_system,
            "origin_id": resource.origin_id,
            "roles": [role.display_name for role in roles],
        },
        now=now or timezone.now(),
    )
    return resource
