"""Admin pages for the directory: people, groups, connected organizations, applications, sites.

Changing the directory takes Django's model permissions (superusers have them all). Anyone
who may enter the admin may look people and groups up: catalog owners and managers pick them
as approvers, requestors and administrators.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    Application,
    AppRole,
    ConnectedOrganization,
    EntitlementManagementSettings,
    Group,
    GroupMembership,
    Site,
    SiteRoleAssignment,
    User,
)


class ReadableByAdmins:
    """Viewing is open to everyone the admin site lets in; changing follows model permissions."""

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self.admin_site.has_permission(request)

    def has_module_permission(self, request):
        return self.has_view_permission(request)


# --------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "display_name"]

    def clean_email(self):
        return self.cleaned_data["email"].lower()


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        return self.cleaned_data["email"].lower()


@admin.register(User)
class UserAdmin(ReadableByAdmins, BaseUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ["email", "display_name", "department", "user_type", "is_active", "last_sign_in"]
    list_filter = ["user_type", "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "display_name", "employee_id"]
    ordering = ["display_name"]
    autocomplete_fields = ["manager", "sponsors", "connected_organization"]
    readonly_fields = ["last_sign_in", "created"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (
            _("Profile"),
            {
                "fields": [
                    "display_name",
                    "department",
                    "job_title",
                    "company_name",
                    "employee_id",
                    "preferred_language",
                ]
            },
        ),
        (
            _("Organization"),
            {"fields": ["user_type", "connected_organization", "manager", "sponsors"]},
        ),
        (_("Sign-in"), {"fields": ["is_active", "last_sign_in", "created"]}),
        (
            _("Django permissions"),
            {
                "classes": ["collapse"],
                "fields": ["is_staff", "is_superuser", "groups", "user_permissions"],
            },
        ),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "display_name", "usable_password", "password1", "password2"],
            },
        ),
    ]

    @admin.display(description=_("last sign-in"), ordering="last_login")
    def last_sign_in(self, obj):
        return obj.last_login


# --------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------


class GroupMembershipInline(ReadableByAdmins, admin.TabularInline):
    model = GroupMembership
    fields = ["user", "role", "source"]
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Group)
class GroupAdmin(ReadableByAdmins, admin.ModelAdmin):
    list_display = ["display_name", "mail"]
    search_fields = ["display_name", "mail", "description"]
    inlines = [GroupMembershipInline]


# --------------------------------------------------------------------------------------
# Connected organizations
# --------------------------------------------------------------------------------------

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class DomainListField(forms.CharField):
    """Email domains typed as "contoso.com, fabrikam.com" and stored as a list."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [d for d in re.split(r"[\s,;]+", text.strip().lower()) if d]

    def validate(self, value):
        super().validate(value)
        bad = [d for d in value if not DOMAIN.match(d)]
        if bad:
            raise ValidationError(
                _("Domains: %(bad)s is not a domain name like contoso.com.")
                % {"bad": ", ".join(bad)}
            )


class ConnectedOrganizationForm(forms.ModelForm):
    domains = DomainListField(
        label=_("domains"),
        required=False,
        help_text=_("Email domains of its users, separated by commas, e.g. contoso.com."),
    )

    class Meta:
        model = ConnectedOrganization
        fields = [
            "display_name",
            "description",
            "domains",
            "state",
            "internal_sponsors",
            "external_sponsors",
        ]


@admin.register(ConnectedOrganization)
class ConnectedOrganizationAdmin(ReadableByAdmins, admin.ModelAdmin):
    form = ConnectedOrganizationForm
    list_display = ["display_name", "state", "domain_list", "created"]
    list_filter = ["state"]
    search_fields = ["display_name", "description"]
    autocomplete_fields = ["internal_sponsors", "external_sponsors"]
    fields = [
        "display_name",
        "description",
        "domains",
        "state",
        "internal_sponsors",
        "external_sponsors",
    ]

    @admin.display(description=_("domains"))
    def domain_list(self, obj):
        return ", ".join(obj.domains or [])

    def changelist_view(self, request, extra_context=None):
        # Single sign-on proposes an organization for each new external domain
        # (identity.guests): say how many wait for a review until they are configured.
        waiting = ConnectedOrganization.objects.filter(
            state=ConnectedOrganization.State.PROPOSED
        ).count()
        if waiting:
            messages.info(
                request,
                ngettext(
                    "%(count)d proposed organization is waiting for review: people who signed "
                    "in from its domain are its guests until you configure or remove it.",
                    "%(count)d proposed organizations are waiting for review: people who signed "
                    "in from their domains are their guests until you configure or remove them.",
                    waiting,
                )
                % {"count": waiting},
            )
        return super().changelist_view(request, extra_context)


# --------------------------------------------------------------------------------------
# Applications and sites
# --------------------------------------------------------------------------------------


class AppRoleInline(ReadableByAdmins, admin.TabularInline):
    model = AppRole
    fields = ["display_name", "value", "description"]
    extra = 0


@admin.register(Application)
class ApplicationAdmin(ReadableByAdmins, admin.ModelAdmin):
    list_display = ["display_name"]
    search_fields = ["display_name", "description"]
    fields = ["display_name", "description", "owners"]
    autocomplete_fields = ["owners"]
    inlines = [AppRoleInline]


class SiteRoleAssignmentInline(ReadableByAdmins, admin.TabularInline):
    model = SiteRoleAssignment
    fields = ["user", "role", "source"]
    autocomplete_fields = ["user"]
    extra = 0
    verbose_name_plural = _("people with a role on the site (its owners may add it to catalogs)")


@admin.register(Site)
class SiteAdmin(ReadableByAdmins, admin.ModelAdmin):
    list_display = ["display_name", "url"]
    search_fields = ["display_name", "url"]
    inlines = [SiteRoleAssignmentInline]


@admin.register(EntitlementManagementSettings)
class EntitlementManagementSettingsAdmin(ReadableByAdmins, admin.ModelAdmin):
    list_display = ["__str__", "external_user_lifecycle_action"]
    fields = [
        "external_user_lifecycle_action",
        "duration_until_external_user_deleted_after_blocked",
    ]

    # One row: the list shows it (stored with the defaults the first time it is opened),
    # and there is nothing to add. Asking whether the row exists from has_add_permission
    # would cost every admin page a query.
    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        if self.has_view_or_change_permission(request):
            self.model.objects.get_or_create(key=1)
        return super().changelist_view(request, extra_context)
