"""Configuration-time operations shared by the admin, seed_demo and the API.

Every change to the configuration (catalogs and their admin roles, resources, packages,
policies, their stages, approvers, subjects and questions) is saved or deleted by
``config_save`` / ``config_delete``, which audit it with the values of the fields it changed
before and after, as JSON in the event's ``data``.

Adding a resource to a catalog also creates the roles a package can grant from it:
a group's Member and Owner, an application's app roles (or "Default Access"), a site's
Visitor, Member and Owner, and for a directory role the product's catalog roles.

Who may add what follows Entra: a catalog owner adds a group, application or site only if
they own it; directory roles, and anything they do not own, only an administrator adds.
Otherwise a catalog owner could hand out membership of any group (an approvers' group, say)
through a package of their own.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import AppRole, SiteRoleAssignment

from . import permissions
from .audit import audit_bulk, audit_event, audit_record
from .connectors import connector_for_system
from .errors import InvalidRequest, PermissionDenied
from .models import (
    CATALOG_SCOPED_ROLES,
    AccessPackage,
    AdminRole,
    Channel,
    OriginSystem,
    Resource,
    ResourceRole,
    RoleAssignment,
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
    if resource.origin_system == OriginSystem.GROUP and resource.group_id is None:
        # A group of a connected system: Owner only where the system records owners.
        has_owners = getattr(connector_for_system(resource.connected_system), "has_owners", False)
        return [("Member", "Member")] + ([("Owner", "Owner")] if has_owners else [])
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
    if resource.origin_system == OriginSystem.GROUP and resource.group_id is None:
        return resource.origin_id  # a group of a connected system: its DN or id there
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
    if resource.display_name:
        return resource.display_name
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


def resources_sync_roles(*, actor, resources, channel=Channel.SYSTEM, now=None):
    """Give each resource the roles it gained since it was added (an application's new app
    role, say), auditing the resources that gained some."""
    now = now or timezone.now()
    events = []
    with transaction.atomic():
        for resource in resources:
            before = sorted(resource.roles.values_list("display_name", flat=True))
            after = sorted(role.display_name for role in resource_sync_roles(resource))
            if after != before:
                change = _change(
                    obj=resource,
                    verb="rolesAdded",
                    before={"roles": before},
                    after={"roles": after},
                    actor=actor,
                    channel=channel,
                    now=now,
                )
                events.append(audit_event(**change))
        audit_bulk(events)


def resource_add_check(
    *,
    actor,
    catalog,
    origin_system,
    group=None,
    application=None,
    site=None,
    role_catalog=None,
    connected_system=None,
    discovered=None,
):
    """Raise PermissionDenied (or InvalidRequest when nothing is chosen), naming the field to
    correct, unless ``actor`` may add the object to ``catalog``. ``actor`` None is the system
    itself (the demo seed, benchmarks); the admin form asks this too, to show a field error.
    ``discovered``: a group of ``connected_system`` found by its connector (a
    DiscoveredGroup), which a catalog owner may add only if the system lists them among its
    owners."""
    if actor is None or permissions.is_superuser(actor):
        return
    if not permissions.can_change_catalog(actor, catalog):
        raise PermissionDenied(
            _("You can add resources only to a catalog you own."), field="catalog"
        )
    if discovered is not None:
        key = connector_for_system(connected_system).user_key(actor)
        if not key or key not in discovered.owner_keys:
            raise PermissionDenied(
                _(
                    "Only an owner of the group “%(name)s” in %(system)s or an administrator "
                    "can add it to a catalog."
                )
                % {"name": discovered.display_name, "system": connected_system},
                field="origin_id",
            )
        return
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
    connected_system=None,
    discovered=None,
    display_name="",
    description="",
    channel=Channel.SYSTEM,
    now=None,
):
    """Add a group, application, site or directory role to a catalog, with its roles.

    Only someone allowed to (``resource_add_check``) may; adding the same object twice
    returns the existing resource. ``discovered`` (with ``connected_system``) adds a group
    a connector found (``search_groups``) as a group of that system.
    """
    resource_add_check(
        actor=actor,
        catalog=catalog,
        origin_system=origin_system,
        group=group,
        application=application,
        site=site,
        role_catalog=role_catalog,
        connected_system=connected_system,
        discovered=discovered,
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
    if discovered is not None:
        resource.connected_system = connected_system
        resource.origin_id = discovered.origin_id
        resource.display_name = display_name or discovered.display_name
        resource.description = description or discovered.description
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
    values = {**config_values(resource), "roles": [role.display_name for role in roles]}
    audit_record(
        **_change(
            obj=resource,
            verb="added",
            before={},
            after=values,
            actor=actor,
            channel=channel,
            now=now or timezone.now(),
        )
    )
    return resource


# --------------------------------------------------------------------------------------
# Saving and deleting configuration, audited
# --------------------------------------------------------------------------------------

# Kept out of the before/after values: they change on every save and say nothing.
UNAUDITED_FIELDS = {"id", "created", "modified"}


def config_values(obj, names=None):
    """{field: value} of ``obj``'s own fields (foreign keys as ids), as JSON would hold them."""
    values = {
        field.attname: field.value_from_object(obj)
        for field in obj._meta.concrete_fields
        if field.name not in UNAUDITED_FIELDS and (names is None or field.name in names)
    }
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def _ids(rows):
    return sorted(str(getattr(row, "pk", row)) for row in rows)


def _action(obj, verb):
    name = type(obj).__name__
    return f"{name[:1].lower()}{name[1:]}.{verb}"


def _package_of(obj):
    """The access package a configuration row belongs to, if any, for filtering the trail."""
    if isinstance(obj, AccessPackage):
        return obj.pk
    if hasattr(obj, "access_package_id"):
        return obj.access_package_id
    for parent in ("policy", "stage", "question"):
        if getattr(obj, f"{parent}_id", None) is not None:
            return _package_of(getattr(obj, parent))
    return None


def _change(*, obj, verb, before, after, actor, channel, now):
    """The audit event's fields for one configuration change."""
    return {
        "action": _action(obj, verb),
        "obj": obj,
        "actor": actor,
        "channel": channel,
        "access_package": _package_of(obj),
        "data": {"before": before, "after": after},
        "now": now,
    }


def _roles_changed(obj, actor):
    # The actor's roles are cached for the request; a role they just gave or took counts now.
    if isinstance(obj, RoleAssignment) and actor is not None:
        permissions.forget_roles(actor)


def config_save(*, actor, obj, m2m=None, channel=Channel.SYSTEM, now=None):
    """Create or change a configuration row (and set the many-to-many ``m2m`` values, a
    {field name: rows} mapping), auditing the fields that changed. Saving an unchanged row
    writes no event."""
    now = now or timezone.now()
    m2m = m2m or {}
    adding = obj._state.adding
    # No savepoint: a failure rolls back the caller's whole change, as the admin's does.
    with transaction.atomic(savepoint=False):
        before = {}
        if not adding:
            current = type(obj)._base_manager.select_for_update().get(pk=obj.pk)
            before = config_values(current)
            for name in m2m:
                before[name] = _ids(getattr(current, name).values_list("pk", flat=True))
        obj.save()
        for name, rows in m2m.items():
            getattr(obj, name).set(rows)
        after = {**config_values(obj), **{name: _ids(rows) for name, rows in m2m.items()}}
        changed = [name for name in after if before.get(name) != after[name]]
        if not adding and not changed:
            return obj
        audit_record(
            **_change(
                obj=obj,
                verb="created" if adding else "changed",
                before={name: before[name] for name in changed if name in before},
                after={name: after[name] for name in changed},
                actor=actor,
                channel=channel,
                now=now,
            )
        )
    _roles_changed(obj, actor)
    return obj


def config_delete(*, actor, objs, channel=Channel.SYSTEM, now=None):
    """Delete configuration rows of one model (one, or a changelist's selection), auditing
    each with the values it had. Rows that depend on them go with them, as the model says."""
    now = now or timezone.now()
    objs = list(objs)
    if not objs:
        return
    model = type(objs[0])
    with transaction.atomic(savepoint=False):
        audit_bulk(
            [
                audit_event(
                    **_change(
                        obj=obj,
                        verb="deleted",
                        before=config_values(obj),
                        after={},
                        actor=actor,
                        channel=channel,
                        now=now,
                    )
                )
                for obj in objs
            ]
        )
        model._base_manager.filter(pk__in=[obj.pk for obj in objs]).delete()
    _roles_changed(objs[0], actor)


def catalog_save(*, actor, catalog, channel=Channel.SYSTEM, now=None):
    """Create or change a catalog; whoever creates one owns it, as in Entra."""
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        adding = catalog._state.adding
        config_save(actor=actor, obj=catalog, channel=channel, now=now)
        if adding and actor is not None:
            owner = RoleAssignment(role=AdminRole.CATALOG_OWNER, principal=actor, catalog=catalog)
            config_save(actor=actor, obj=owner, channel=channel, now=now)
    return catalog
