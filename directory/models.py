"""The local directory: people, groups, connected organizations, applications and sites.

It plays the part Entra ID's directory plays for entitlement management: the built-in
connector delivers access by writing group memberships and role grants here.
"""

import uuid
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    """Abstract base: a UUID id and created/modified times, shared by every model."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    modified = models.DateTimeField(_("modified"), auto_now=True)

    class Meta:
        abstract = True


class GrantSource(models.TextChoices):
    """Who put a membership or role grant in place."""

    DIRECT = "direct", _("Given directly")
    ENTITLEMENT = "entitlement", _("Delivered by an access package")


class ConnectedOrganization(BaseModel):
    """An external organization whose users may request access (Graph connectedOrganization)."""

    class State(models.TextChoices):
        CONFIGURED = "configured", _("Configured")
        PROPOSED = "proposed", _("Proposed")

    display_name = models.CharField(_("name"), max_length=256, unique=True)
    description = models.TextField(_("description"), blank=True)
    domains = models.JSONField(
        _("domains"),
        default=list,
        blank=True,
        help_text=_('Email domains whose users belong to this organization, e.g. ["contoso.com"].'),
    )
    state = models.CharField(_("state"), max_length=16, choices=State, default=State.CONFIGURED)
    internal_sponsors = models.ManyToManyField(
        "User", blank=True, related_name="internally_sponsored_organizations"
    )
    external_sponsors = models.ManyToManyField(
        "User", blank=True, related_name="externally_sponsored_organizations"
    )

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("connected organization")

    def __str__(self):
        return self.display_name


class EntitlementManagementSettings(BaseModel):
    """The one row of product-wide settings (Graph entitlementManagementSettings): what
    happens to an external user whose last access package assignment ends."""

    class ExternalUserLifecycleAction(models.TextChoices):
        NONE = "none", _("Nothing")
        BLOCK_SIGN_IN = "blockSignIn", _("Block sign-in")
        BLOCK_SIGN_IN_AND_DELETE = "blockSignInAndDelete", _("Block sign-in, then delete")

    # Always 1: the unique constraint keeps the table at one row, whoever saves first.
    key = models.PositiveSmallIntegerField(default=1, editable=False)
    external_user_lifecycle_action = models.CharField(
        _("when an external user's last assignment ends"),
        max_length=24,
        choices=ExternalUserLifecycleAction,
        default=ExternalUserLifecycleAction.BLOCK_SIGN_IN_AND_DELETE,
    )
    duration_until_external_user_deleted_after_blocked = models.DurationField(
        _("delete the blocked external user after"), default=timedelta(days=30)
    )

    class Meta:
        verbose_name = _("entitlement management settings")
        verbose_name_plural = _("entitlement management settings")
        constraints = [
            models.UniqueConstraint(fields=["key"], name="one_entitlement_management_settings"),
            models.CheckConstraint(
                name="entitlement_management_settings_key_is_1", condition=models.Q(key=1)
            ),
        ]

    def __str__(self):
        return str(_("Entitlement management settings"))

    @classmethod
    def current(cls):
        """The saved settings, or unsaved defaults when nobody has changed them yet."""
        return cls.objects.filter(key=1).first() or cls()

    def clean(self):
        if self.duration_until_external_user_deleted_after_blocked is not None and (
            self.duration_until_external_user_deleted_after_blocked < timedelta(0)
        ):
            raise ValidationError(
                {
                    "duration_until_external_user_deleted_after_blocked": _(
                        "The time before deletion cannot be negative."
                    )
                }
            )


class UserManager(BaseUserManager):
    """Creates users who sign in with their email address."""

    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        if not email:
            raise ValueError("Users must have an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(BaseModel, AbstractBaseUser, PermissionsMixin):
    """A person in the directory: an employee (member) or a guest from a connected organization."""

    class UserType(models.TextChoices):
        MEMBER = "Member", _("Member")
        GUEST = "Guest", _("Guest")

    email = models.EmailField(_("email"), unique=True)
    display_name = models.CharField(_("display name"), max_length=256)
    department = models.CharField(_("department"), max_length=128, blank=True, db_index=True)
    job_title = models.CharField(_("job title"), max_length=128, blank=True)
    company_name = models.CharField(_("company"), max_length=128, blank=True)
    employee_id = models.CharField(_("employee id"), max_length=64, blank=True)
    user_type = models.CharField(
        _("user type"), max_length=8, choices=UserType, default=UserType.MEMBER
    )
    manager = models.ForeignKey(
        "self",
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="direct_reports",
    )
    sponsors = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="sponsored_users"
    )
    connected_organization = models.ForeignKey(
        ConnectedOrganization,
        verbose_name=_("connected organization"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="users",
    )
    is_active = models.BooleanField(
        _("enabled"), default=True, help_text=_("A disabled account cannot sign in.")
    )
    is_staff = models.BooleanField(
        _("staff"), default=False, help_text=_("May sign in to the admin site.")
    )
    preferred_language = models.CharField(_("preferred language"), max_length=8, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("user")
        # Lists of people (the API's /users, the admin) are read in name order, a page at a
        # time: this index serves the order and the keyset of the next page.
        indexes = [models.Index(fields=["display_name", "id"], name="user_name_order_idx")]

    def __str__(self):
        return f"{self.display_name} <{self.email}>"

    @property
    def last_sign_in(self):
        return self.last_login

    @property
    def is_guest(self):
        return self.user_type == self.UserType.GUEST

    def get_full_name(self):
        return self.display_name

    def get_short_name(self):
        return self.display_name.split(" ")[0] if self.display_name else self.email

    def manager_at_level(self, level):
        """The manager ``level`` steps up (1 = direct manager), or None."""
        person = self
        for _step in range(level):
            person = person.manager
            if person is None:
                return None
        return person


class Group(BaseModel):
    """A directory group; access packages grant its Member or Owner role."""

    display_name = models.CharField(_("name"), max_length=256, unique=True)
    description = models.TextField(_("description"), blank=True)
    mail = models.EmailField(_("mail"), blank=True)

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("group")

    def __str__(self):
        return self.display_name

    def is_owned_by(self, user):
        return self.memberships.filter(user=user, role=GroupMembership.Role.OWNER).exists()


class GroupMembership(BaseModel):
    """One user's Member or Owner role in one group, and who gave it."""

    class Role(models.TextChoices):
        MEMBER = "Member", _("Member")
        OWNER = "Owner", _("Owner")

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="group_memberships")
    role = models.CharField(_("role"), max_length=8, choices=Role, default=Role.MEMBER)
    source = models.CharField(
        _("source"), max_length=16, choices=GrantSource, default=GrantSource.DIRECT
    )

    class Meta:
        verbose_name = _("group membership")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "user", "role"], name="one_membership_per_group_user_role"
            )
        ]
        indexes = [
            # "which groups is this user in" (eligibility, separation of duties)
            models.Index(fields=["user", "role"], name="groupmembership_user_role_idx"),
        ]

    def __str__(self):
        return f"{self.user.display_name} is {self.role} of {self.group.display_name}"


class Application(BaseModel):
    """An application whose app roles access packages grant (Graph: AadApplication)."""

    display_name = models.CharField(_("name"), max_length=256, unique=True)
    description = models.TextField(_("description"), blank=True)
    owners = models.ManyToManyField(
        User,
        verbose_name=_("owners"),
        blank=True,
        related_name="owned_applications",
        help_text=_("People responsible for the application; they may add it to their catalogs."),
    )

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("application")

    def __str__(self):
        return self.display_name

    def is_owned_by(self, user):
        return self.owners.filter(pk=user.pk).exists()


class AppRole(BaseModel):
    """A role an application defines; "Default Access" when the application has none."""

    DEFAULT_ACCESS = "Default Access"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="app_roles")
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    value = models.CharField(_("value"), max_length=128, blank=True, help_text=_("Claim value."))

    class Meta:
        ordering = ["application", "display_name"]
        verbose_name = _("app role")
        constraints = [
            models.UniqueConstraint(
                fields=["application", "display_name"], name="unique_app_role_name_per_application"
            )
        ]

    def __str__(self):
        return f"{self.application.display_name}: {self.display_name}"


class AppRoleAssignment(BaseModel):
    """One user holding one app role."""

    app_role = models.ForeignKey(AppRole, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="app_role_assignments")
    source = models.CharField(
        _("source"), max_length=16, choices=GrantSource, default=GrantSource.DIRECT
    )

    class Meta:
        verbose_name = _("app role assignment")
        constraints = [
            models.UniqueConstraint(fields=["app_role", "user"], name="one_app_role_assignment")
        ]

    def __str__(self):
        return f"{self.user.display_name}: {self.app_role}"


class Site(BaseModel):
    """A collaboration site (Graph: SharePointOnline) with Visitor, Member and Owner roles."""

    display_name = models.CharField(_("name"), max_length=256)
    url = models.URLField(_("URL"), unique=True)

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("site")

    def __str__(self):
        return self.display_name

    def is_owned_by(self, user):
        return self.role_assignments.filter(user=user, role=SiteRoleAssignment.Role.OWNER).exists()


class SiteRoleAssignment(BaseModel):
    """One user holding one role on one site."""

    class Role(models.TextChoices):
        VISITOR = "Visitor", _("Visitor")
        MEMBER = "Member", _("Member")
        OWNER = "Owner", _("Owner")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="role_assignments")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="site_role_assignments")
    role = models.CharField(_("role"), max_length=8, choices=Role)
    source = models.CharField(
        _("source"), max_length=16, choices=GrantSource, default=GrantSource.DIRECT
    )

    class Meta:
        verbose_name = _("site role assignment")
        constraints = [
            models.UniqueConstraint(
                fields=["site", "user", "role"], name="one_site_role_assignment"
            )
        ]

    def __str__(self):
        return f"{self.user.display_name} is {self.role} of {self.site.display_name}"
