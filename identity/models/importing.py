"""Directory import: people (and optionally groups) read from an LDAP server or Active
Directory on a schedule, and the link from each directory entry to the person it became."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, Group, User
from entitlements.models import ConnectedSystem

# The User fields an import may set, and the attribute each directory flavour reads them from
# ("" leaves the field alone). ``manager`` holds the manager's DN.
MAPPED_FIELDS = (
    "email",
    "display_name",
    "department",
    "job_title",
    "employee_id",
    "company_name",
    "manager",
)


class DirectoryFlavor(models.TextChoices):
    """Which kind of server an import reads: it chooses the default attributes."""

    OPENLDAP = "openLdap", _("OpenLDAP (inetOrgPerson)")
    ACTIVE_DIRECTORY = "activeDirectory", _("Active Directory")


DEFAULTS = {
    DirectoryFlavor.OPENLDAP: {
        "user_filter": "(objectClass=inetOrgPerson)",
        "key_attribute": "entryUUID",
        # OpenLDAP has no standard "disabled" flag: a filter names the disabled entries,
        # e.g. (employeeType=disabled) or (pwdAccountLockedTime=*) with the ppolicy overlay.
        "disabled_filter": "",
        "group_filter": "(objectClass=groupOfNames)",
        "attribute_map": {
            "email": "mail",
            "display_name": "displayName",
            "department": "departmentNumber",
            "job_title": "title",
            "employee_id": "employeeNumber",
            "company_name": "",
            "manager": "manager",
        },
    },
    DirectoryFlavor.ACTIVE_DIRECTORY: {
        "user_filter": "(&(objectCategory=person)(objectClass=user))",
        "key_attribute": "objectGUID",
        # userAccountControl bit 2 (ACCOUNTDISABLE), tested by the bitwise-AND matching rule.
        "disabled_filter": "(userAccountControl:1.2.840.113556.1.4.803:=2)",
        "group_filter": "(objectClass=group)",
        "attribute_map": {
            "email": "mail",
            "display_name": "displayName",
            "department": "department",
            "job_title": "title",
            "employee_id": "employeeID",
            "company_name": "company",
            "manager": "manager",
        },
    },
}


class DirectoryImport(BaseModel):
    """A scheduled import of people (and optionally groups) from one LDAP connected system."""

    Flavor = DirectoryFlavor

    name = models.CharField(_("name"), max_length=128, unique=True)
    system = models.ForeignKey(
        ConnectedSystem,
        verbose_name=_("connected system"),
        on_delete=models.PROTECT,
        related_name="directory_imports",
        limit_choices_to={"kind": ConnectedSystem.Kind.LDAP},
        help_text=_("The LDAP server read: its URL, bind DN and password are the system's."),
    )
    flavor = models.CharField(
        _("directory"), max_length=16, choices=DirectoryFlavor, default=DirectoryFlavor.OPENLDAP
    )
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Run on its schedule."))
    user_base = models.CharField(
        _("people base DN"),
        max_length=512,
        blank=True,
        help_text=_("Where people are; empty: the connected system's user_base."),
    )
    user_filter = models.CharField(
        _("people filter"),
        max_length=1024,
        blank=True,
        help_text=_("Which entries are people; empty: the directory's default."),
    )
    key_attribute = models.CharField(
        _("key attribute"),
        max_length=64,
        blank=True,
        help_text=_(
            "The attribute that identifies an entry for good, across renames: entryUUID "
            "(OpenLDAP) or objectGUID (Active Directory) when empty."
        ),
    )
    attribute_map = models.JSONField(
        _("attribute mapping"),
        default=dict,
        blank=True,
        help_text=_(
            'Overrides of the default attributes, by field: e.g. {"department": "ou", '
            '"employee_id": "uid"}; "" leaves a field alone. Fields: email, display_name, '
            "department, job_title, employee_id, company_name, manager (a DN)."
        ),
    )
    disabled_filter = models.CharField(
        _("disabled filter"),
        max_length=1024,
        blank=True,
        help_text=_(
            "An LDAP filter matching the people whose account is disabled. Active Directory "
            "uses userAccountControl bit 2 when empty; write - for nobody."
        ),
    )
    disable_missing = models.BooleanField(
        _("disable people no longer found"),
        default=True,
        help_text=_(
            "A person this import created or matched who is gone from the directory is disabled."
        ),
    )
    disable_limit = models.PositiveIntegerField(
        _("most people disabled in one run"),
        default=500,
        help_text=_(
            "A run that would disable more people than this (a wrong base DN, a filter "
            "typo) disables nobody and reports it; 0 for no limit."
        ),
    )
    import_groups = models.BooleanField(_("import groups"), default=False)
    group_base = models.CharField(
        _("groups base DN"),
        max_length=512,
        blank=True,
        help_text=_("Where groups are; empty: the connected system's group_base."),
    )
    group_filter = models.CharField(_("groups filter"), max_length=1024, blank=True)
    group_name_attribute = models.CharField(
        _("group name attribute"), max_length=64, blank=True, help_text=_("cn when empty.")
    )
    member_attribute = models.CharField(
        _("member attribute"), max_length=64, blank=True, help_text=_("member when empty.")
    )
    interval = models.DurationField(
        _("runs every"), default=timedelta(hours=1), help_text=_("For example “1 hour” or “1 day”.")
    )
    next_run = models.DateTimeField(
        _("next run"), null=True, blank=True, help_text=_("Empty: at the next scheduler tick.")
    )
    lease_expires = models.DateTimeField(
        _("running until"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Set while a run holds the import; another run waits until it ends."),
    )
    last_started = models.DateTimeField(
        _("last run started"), null=True, blank=True, editable=False
    )
    last_finished = models.DateTimeField(
        _("last run finished"), null=True, blank=True, editable=False
    )
    last_result = models.JSONField(
        _("last run's changes"), default=dict, blank=True, editable=False
    )
    last_error = models.TextField(_("last run's error"), blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("directory import")
        # The scheduler's query: enabled imports whose next run has come.
        indexes = [models.Index(fields=["enabled", "next_run"], name="directory_import_due_idx")]
        constraints = [
            models.CheckConstraint(
                name="directory_import_interval_at_least_a_minute",
                condition=Q(interval__gte=timedelta(minutes=1)),
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.system_id and self.system.kind != ConnectedSystem.Kind.LDAP:
            raise ValidationError({"system": _("A directory import reads an LDAP server.")})
        if not isinstance(self.attribute_map, dict):
            raise ValidationError({"attribute_map": _("The mapping is a JSON object.")})
        unknown = sorted(set(self.attribute_map) - set(MAPPED_FIELDS))
        if unknown:
            raise ValidationError(
                {
                    "attribute_map": _("%(fields)s cannot be imported; the fields are %(known)s.")
                    % {"fields": ", ".join(unknown), "known": ", ".join(MAPPED_FIELDS)}
                }
            )
        if not self.mapping().get("email"):
            raise ValidationError({"attribute_map": _("email needs an attribute.")})
        if self.interval is not None and self.interval < timedelta(minutes=1):
            raise ValidationError({"interval": _("An import runs at most once a minute.")})

    # --- Settings with their defaults ----------------------------------------------------

    def _default(self, name):
        return DEFAULTS[self.flavor][name]

    def mapping(self):
        """{User field: attribute} with the flavour's defaults; unmapped fields left out."""
        merged = {**self._default("attribute_map"), **(self.attribute_map or {})}
        return {field: attribute for field, attribute in merged.items() if attribute}

    def effective_user_base(self):
        return self.user_base or (self.system.settings or {}).get("user_base", "")

    def effective_user_filter(self):
        return self.user_filter or self._default("user_filter")

    def effective_key_attribute(self):
        return self.key_attribute or self._default("key_attribute")

    def effective_disabled_filter(self):
        value = self.disabled_filter or self._default("disabled_filter")
        return "" if value.strip() == "-" else value

    def effective_group_base(self):
        return self.group_base or (self.system.settings or {}).get("group_base", "")

    def effective_group_filter(self):
        return self.group_filter or self._default("group_filter")

    def effective_group_name_attribute(self):
        return self.group_name_attribute or "cn"

    def effective_member_attribute(self):
        return self.member_attribute or "member"


class DirectoryImportLink(models.Model):
    """Which local person (or group) one directory entry, known by its key, became."""

    directory_import = models.ForeignKey(
        DirectoryImport, on_delete=models.CASCADE, related_name="links"
    )
    key = models.CharField(_("key"), max_length=255)
    dn = models.CharField(_("DN"), max_length=1024)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="directory_links"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="directory_links"
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("directory import link")
        constraints = [
            models.UniqueConstraint(
                fields=["directory_import", "key"], name="one_link_per_directory_entry"
            ),
            models.UniqueConstraint(
                fields=["directory_import", "user"],
                condition=Q(user__isnull=False),
                name="one_directory_entry_per_imported_user",
            ),
            models.UniqueConstraint(
                fields=["directory_import", "group"],
                condition=Q(group__isnull=False),
                name="one_directory_entry_per_imported_group",
            ),
            models.CheckConstraint(
                name="directory_link_is_a_user_or_a_group",
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.directory_import}: {self.dn}"
