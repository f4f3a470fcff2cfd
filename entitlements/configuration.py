"""Configuration-time operations shared by the admin, seed_demo and the API.

Adding a resource to a catalog also creates the roles a package can grant from it:
a group's Member and Owner, an application's app roles (or "Default Access"), a site's
Visitor, Member and Owner, and for a directory role the product's catalog roles.
"""

from django.db import transaction

from directory.models import AppRole, SiteRoleAssignment

from .models import CATALOG_SCOPED_ROLES, AdminRole, OriginSystem, Resource, ResourceRole


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


@transaction.atomic
def resource_add(
    *,
    catalog,
    origin_system,
    group=None,
    application=None,
    site=None,
    role_catalog=None,
    display_name="",
    description="",
):
    """Add a group, application, site or directory role to a catalog, with its roles.

    Adding the same object twice returns the existing resource.
    """
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
    resource_sync_roles(resource)
    return resource
