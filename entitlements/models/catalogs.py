"""Catalogs, the product's admin roles, resources and their roles, access packages."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import Application, BaseModel, Group, Site, User

from ..querysets import RestrictedQuerySet

# --------------------------------------------------------------------------------------
# Catalogs and the product's own admin roles
# --------------------------------------------------------------------------------------


class Catalog(BaseModel):
    """A container of resources and packages, managed by its owners (accessPackageCatalog)."""

    GENERAL = "General"

    class CatalogType(models.TextChoices):
        USER_MANAGED = "userManaged", _("User managed")
        SERVICE_DEFAULT = "serviceDefault", _("Built-in")

    class State(models.TextChoices):
        PUBLISHED = "published", _("Enabled")
        UNPUBLISHED = "unpublished", _("Disabled")

    display_name = models.CharField(_("name"), max_length=256, unique=True)
    description = models.TextField(_("description"), blank=True)
    catalog_type = models.CharField(
        _("type"), max_length=16, choices=CatalogType, default=CatalogType.USER_MANAGED
    )
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=State,
        default=State.PUBLISHED,
        help_text=_("Packages in a disabled catalog cannot be requested."),
    )
    is_externally_visible = models.BooleanField(
        _("enabled for external users"),
        default=False,
        help_text=_("Users from connected organizations may request packages of this catalog."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("catalog")

    def __str__(self):
        return self.display_name

    @property
    def is_enabled(self):
        return self.state == self.State.PUBLISHED


class AdminRole(models.TextChoices):
    """The product's administrative roles; all but catalog creator are held per catalog."""

    CATALOG_CREATOR = "catalogCreator", _("Catalog creator")
    CATALOG_OWNER = "catalogOwner", _("Catalog owner")
    CATALOG_READER = "catalogReader", _("Catalog reader")
    ACCESS_PACKAGE_MANAGER = "accessPackageManager", _("Access package manager")
    ACCESS_PACKAGE_ASSIGNMENT_MANAGER = (
        "accessPackageAssignmentManager",
        _("Access package assignment manager"),
    )


CATALOG_SCOPED_ROLES = [r for r in AdminRole.values if r != AdminRole.CATALOG_CREATOR]


class RoleAssignment(BaseModel):
    """One person holding one admin role, for one catalog or (catalog creator) product-wide."""

    class Source(models.TextChoices):
        DIRECT = "direct", _("Given directly")
        ENTITLEMENT = "entitlement", _("Delivered by an access package")

    role = models.CharField(_("role"), max_length=40, choices=AdminRole)
    principal = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="role_assignments"
    )
    catalog = models.ForeignKey(
        Catalog,
        verbose_name=_("catalog"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_assignments",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source, default=Source.DIRECT)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("role assignment")
        constraints = [
            models.CheckConstraint(
                name="catalog_roles_have_a_catalog",
                condition=(Q(role="catalogCreator") & Q(catalog__isnull=True))
                | (~Q(role="catalogCreator") & Q(catalog__isnull=False)),
                violation_error_message=_(
                    "Catalog creator is held product-wide; every other role needs a catalog."
                ),
            ),
            models.UniqueConstraint(
                fields=["role", "principal", "catalog"],
                condition=Q(catalog__isnull=False),
                name="one_catalog_role_per_principal",
            ),
            models.UniqueConstraint(
                fields=["role", "principal"],
                condition=Q(catalog__isnull=True),
                name="one_product_role_per_principal",
            ),
        ]
        indexes = [
            # "which catalogs may this admin see" (admin querysets, selectors)
            models.Index(fields=["principal", "role"], name="roleassignment_principal_idx"),
        ]

    def __str__(self):
        scope = self.catalog.display_name if self.catalog_id else _("all catalogs")
        return f"{self.principal.display_name}: {self.get_role_display()} ({scope})"


# --------------------------------------------------------------------------------------
# Resources and their roles
# --------------------------------------------------------------------------------------


class ConnectedSystemKind(models.TextChoices):
    """Which connector class serves a connected system."""

    BUILTIN = "builtin", _("Built-in directory")
    LDAP = "ldap", _("LDAP server")
    SCIM = "scim", _("SCIM 2.0 application")


class ConnectedSystem(BaseModel):
    """A system whose resources the product delivers: the built-in directory, LDAP or SCIM."""

    BUILTIN_NAME = "Built-in directory"
    Kind = ConnectedSystemKind

    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    name = models.CharField(_("name"), max_length=256, unique=True)
    settings = models.JSONField(
        _("settings"),
        default=dict,
        blank=True,
        help_text=_("Connection settings of its kind, e.g. the URL and a timeout in seconds."),
    )
    secret_reference = models.CharField(
        _("secret reference"),
        max_length=512,
        blank=True,
        help_text=_(
            "The name of the environment variable, or the path of the file, that holds the "
            "credential; never the credential itself."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    last_success_datetime = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_datetime = models.DateTimeField(_("last error at"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    probe_datetime = models.DateTimeField(
        _("last probe"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "While unhealthy, the last time one call was let through to see if it answers."
        ),
    )

    # Circuit breaker: after this many consecutive failures the system is unhealthy; its
    # waiting work is not called, except one probe per interval (settings may say otherwise).
    FAILURE_THRESHOLD = 5
    PROBE_INTERVAL = 60  # seconds

    class Meta:
        ordering = ["name"]
        verbose_name = _("connected system")
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(kind=ConnectedSystemKind.BUILTIN),
                name="one_builtin_connected_system",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def failure_threshold(self):
        return int((self.settings or {}).get("failure_threshold", self.FAILURE_THRESHOLD))

    @property
    def probe_interval(self):
        return float((self.settings or {}).get("probe_interval", self.PROBE_INTERVAL))

    @property
    def is_unhealthy(self):
        """Failed ``failure_threshold`` times in a row: its work waits (circuit open)."""
        return self.consecutive_failures >= max(1, self.failure_threshold)

    @property
    def is_builtin(self):
        return self.kind == ConnectedSystemKind.BUILTIN


def builtin_system_id():
    """The built-in directory's id: the default system of a new resource (made if missing).

    Only the id is read: a migration that adds a column to connected systems runs after
    the one that calls this to fill in existing resources."""
    builtin = ConnectedSystem.objects.filter(kind=ConnectedSystem.Kind.BUILTIN)
    pk = builtin.values_list("pk", flat=True).first()
    if pk is not None:
        return pk
    system, _created = ConnectedSystem.objects.get_or_create(
        kind=ConnectedSystem.Kind.BUILTIN, defaults={"name": ConnectedSystem.BUILTIN_NAME}
    )
    return system.pk


class OriginSystem(models.TextChoices):
    """What kind of object a resource is (Graph's originSystem); where it lives is its
    connected system."""

    GROUP = "AadGroup", _("Group")
    APPLICATION = "AadApplication", _("Application")
    SITE = "SharePointOnline", _("Site")
    DIRECTORY_ROLE = "DirectoryRole", _("Directory role")


class DriftMode(models.TextChoices):
    """What drift reconciliation does with a difference between the system and the product."""

    REPORT_ONLY = "reportOnly", _("Report only")
    ENFORCE = "enforce", _("Enforce (add the missing, remove the extra)")


class Resource(BaseModel):
    """A group, application, site or admin role added to a catalog (accessPackageResource).

    A resource of the built-in directory points at its local group, application or site. A
    group of another connected system (LDAP, SCIM) is known by ``origin_id`` alone (an LDAP
    DN, a SCIM id), with ``group`` empty: there is no local copy of it.
    """

    DriftMode = DriftMode

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="resources")
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    origin_system = models.CharField(_("origin system"), max_length=32, choices=OriginSystem)
    origin_id = models.CharField(
        _("origin id"), max_length=512, help_text=_("The resource's id in its origin system.")
    )
    connected_system = models.ForeignKey(
        ConnectedSystem,
        verbose_name=_("connected system"),
        on_delete=models.PROTECT,
        related_name="resources",
        default=builtin_system_id,
        help_text=_("Where the resource lives; its connector grants and revokes the roles."),
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="catalog_resources"
    )
    application = models.ForeignKey(
        Application,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="catalog_resources",
    )
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="catalog_resources"
    )
    role_catalog = models.ForeignKey(
        Catalog,
        verbose_name=_("administered catalog"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_(
            "For a directory role: the catalog whose roles it grants "
            "(empty for the product-wide catalog creator role)."
        ),
    )

    drift_mode = models.CharField(
        _("drift"),
        max_length=16,
        choices=DriftMode,
        default=DriftMode.REPORT_ONLY,
        help_text=_(
            "For a resource of a connected system: report its members that differ from the "
            "product's assignments, or also correct them."
        ),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("resource")
        constraints = [
            models.UniqueConstraint(
                fields=["catalog", "origin_system", "origin_id"],
                name="one_resource_per_catalog_origin",
            ),
            # A group of another connected system has no local group (Resource.clean checks
            # that a built-in one has); an application and a site are always local.
            models.CheckConstraint(
                name="resource_points_at_its_origin_object",
                condition=(~Q(origin_system="AadApplication") | Q(application__isnull=False))
                & (~Q(origin_system="SharePointOnline") | Q(site__isnull=False)),
                violation_error_message=_("Choose the group, application or site."),
            ),
        ]
        indexes = [
            # the admin's resource list by name, id: read in order, stop at a page
            models.Index(fields=["display_name", "id"], name="resource_name_order_idx"),
        ]

    def __str__(self):
        return f"{self.display_name} ({self.get_origin_system_display()})"

    def clean(self):
        super().clean()
        if self.origin_system == OriginSystem.GROUP and self.group_id is None:
            system = self.connected_system if self.connected_system_id else None
            if system is None or system.is_builtin:
                raise ValidationError({"group": _("Choose the group.")})


class ResourceRole(BaseModel):
    """A role of a resource a package can grant, e.g. Member (accessPackageResourceRole)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="roles")
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    origin_id = models.CharField(
        _("origin id"),
        max_length=512,
        help_text=_("The role's id in the origin system (Member, Owner, an app role id...)."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["resource__display_name", "display_name"]
        verbose_name = _("resource role")
        constraints = [
            models.UniqueConstraint(fields=["resource", "origin_id"], name="one_role_per_origin_id")
        ]

    def __str__(self):
        return f"{self.display_name} of {self.resource.display_name}"


# --------------------------------------------------------------------------------------
# Access packages
# --------------------------------------------------------------------------------------


class AccessPackage(BaseModel):
    """A bundle of resource roles that people request and hold together (accessPackage)."""

    catalog = models.ForeignKey(Catalog, on_delete=models.PROTECT, related_name="access_packages")
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    is_hidden = models.BooleanField(
        _("hidden"),
        default=False,
        help_text=_("Not listed in My Access; people can still request it through its link."),
    )
    incompatible_access_packages = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="access_packages_incompatible_with",
        verbose_name=_("incompatible access packages"),
        help_text=_("People holding or requesting one of these cannot request this package."),
    )
    incompatible_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="incompatible_access_packages",
        verbose_name=_("incompatible groups"),
        help_text=_("Members of these groups cannot request this package."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("access package")
        indexes = [
            # the package list in My Access and the admin filter by catalog, sorted by name
            models.Index(fields=["catalog", "display_name"], name="accesspackage_catalog_name_idx"),
            # My Access and the admin list packages by name, id: read in order, stop at a page
            models.Index(fields=["display_name", "id"], name="accesspackage_name_order_idx"),
        ]

    def __str__(self):
        return self.display_name


class ResourceRoleScope(BaseModel):
    """One resource role that an access package grants (accessPackageResourceRoleScope)."""

    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.CASCADE, related_name="resource_role_scopes"
    )
    role = models.ForeignKey(ResourceRole, on_delete=models.PROTECT, related_name="role_scopes")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("resource role scope")
        constraints = [
            models.UniqueConstraint(
                fields=["access_package", "role"], name="one_scope_per_package_role"
            )
        ]

    def __str__(self):
        return f"{self.access_package}: {self.role}"

    def clean(self):
        if (
            self.access_package_id
            and self.role_id
            and self.role.resource.catalog_id != self.access_package.catalog_id
        ):
            raise ValidationError(
                {
                    "role": _(
                        "%(role)s belongs to a resource of the catalog %(catalog)s; a package can "
                        "only grant roles of resources in its own catalog."
                    )
                    % {"role": self.role, "catalog": self.role.resource.catalog}
                }
            )
