"""API credentials in the admin, for superusers only: applications, secrets, tokens.

Registering an application creates its service principal; a client secret is made on its
own page and shown once, on the page that answers the form, never again. Secrets and
tokens are revoked with the changelist actions. Every change goes through ``api.tokens``
(audited with channel ``admin``); nothing here saves a credential row itself.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from entitlements.models import Channel

from .models import AccessToken, Application, ClientSecret
from .permissions import APPLICATION_PERMISSIONS
from .tokens import (
    application_register,
    application_save,
    secret_create,
    secret_revoke,
    token_revoke,
)

SECRET_LIFETIMES = [(180, _("6 months")), (365, _("12 months")), (730, _("24 months"))]


class SuperuserOnly:
    """API credentials reach every catalog: superusers only, and never deleted (revoke or
    disable instead, so the audit trail keeps what they were)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Secrets and tokens are read-only here: the revoke actions change them."""


class ApplicationForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        label=_("Application permissions"),
        choices=[(name, name) for name in APPLICATION_PERMISSIONS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "Microsoft Graph application permissions. Without EntitlementManagement.* the "
            "application acts only within the catalog roles given to its service principal."
        ),
    )

    class Meta:
        model = Application
        fields = ["display_name", "permissions", "enabled"]


class SecretForm(forms.Form):
    description = forms.CharField(label=_("Description"), max_length=256, required=False)
    lifetime = forms.TypedChoiceField(
        label=_("Expires after"), choices=SECRET_LIFETIMES, coerce=int, initial=180
    )


class SecretInline(admin.TabularInline):
    model = ClientSecret
    fields = ["hint", "description", "expires", "last_used", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Application)
class ApplicationAdmin(SuperuserOnly, admin.ModelAdmin):
    form = ApplicationForm
    list_display = ["display_name", "client_id", "enabled", "permission_list", "created"]
    list_filter = ["enabled"]
    search_fields = ["display_name", "client_id"]
    readonly_fields = [
        "client_id",
        "service_principal_link",
        "created_by",
        "created",
        "secret_link",
    ]
    inlines = [SecretInline]

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["display_name", "permissions", "enabled"]})]
        return [
            (None, {"fields": ["display_name", "client_id", "permissions", "enabled"]}),
            (
                _("Identity"),
                {"fields": ["service_principal_link", "created_by", "created", "secret_link"]},
            ),
        ]

    @admin.display(description=_("permissions"))
    def permission_list(self, obj):
        return ", ".join(obj.permissions) or "—"

    @admin.display(description=_("service principal"))
    def service_principal_link(self, obj):
        url = reverse("admin:directory_user_change", args=[obj.service_principal_id])
        return format_html(
            '<a href="{}">{}</a> — {}',
            url,
            obj.service_principal.email,
            _("give it catalog roles under Admin roles to let it act within catalogs"),
        )

    @admin.display(description=_("client secrets"))
    def secret_link(self, obj):
        url = reverse("admin:api_application_secret", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("New client secret"))

    def save_model(self, request, obj, form, change):
        if change:
            application_save(actor=request.user, application=obj, channel=Channel.ADMIN)
        else:
            created = application_register(
                actor=request.user,
                display_name=obj.display_name,
                permissions=obj.permissions,
                channel=Channel.ADMIN,
            )
            if not obj.enabled:
                created.enabled = False
                application_save(actor=request.user, application=created, channel=Channel.ADMIN)
            obj.pk, obj.client_id = created.pk, created.client_id
            obj.service_principal_id = created.service_principal_id
            obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        # An application is of no use without a secret: go and make its first one.
        return redirect("admin:api_application_secret", pk=obj.pk)

    def log_addition(self, request, obj, message):
        return None  # audited by application_register

    def log_change(self, request, obj, message):
        return None  # audited by application_save

    def get_urls(self):
        secret = path(
            "<uuid:pk>/secret/",
            self.admin_site.admin_view(self.secret_view),
            name="api_application_secret",
        )
        return [secret, *super().get_urls()]

    def secret_view(self, request, pk):
        """A new client secret: the form, then the value on the page that answers it, once."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        application = get_object_or_404(Application, pk=pk)
        form = SecretForm(request.POST or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "application": application,
            "form": form,
            "title": _("New client secret for %(name)s") % {"name": application.display_name},
        }
        if request.method == "POST" and form.is_valid():
            now = timezone.now()
            secret, value = secret_create(
                actor=request.user,
                application=application,
                description=form.cleaned_data["description"],
                expires=now + timedelta(days=form.cleaned_data["lifetime"]),
                channel=Channel.ADMIN,
                now=now,
            )
            context.update(secret=secret, value=value)
            response = render(request, "admin/api/secret_created.html", context)
            add_never_cache_headers(response)
            return response
        return TemplateResponse(request, "admin/api/secret_form.html", context)


@admin.register(ClientSecret)
class ClientSecretAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = [
        "hint_shown",
        "application",
        "description",
        "expires",
        "last_used",
        "revoked_at",
    ]
    list_filter = ["application"]
    list_select_related = ["application"]
    readonly_fields = [
        "application",
        "hint",
        "description",
        "expires",
        "last_used",
        "revoked_at",
        "created",
    ]
    fields = readonly_fields
    actions = ["revoke"]

    @admin.display(description=_("secret"))
    def hint_shown(self, obj):
        return f"{obj.hint}…"

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Revoke the selected secrets"), permissions=["change"])
    def revoke(self, request, queryset):
        for secret in queryset.filter(revoked_at__isnull=True):
            secret_revoke(actor=request.user, secret=secret, channel=Channel.ADMIN)
        messages.success(request, _("The selected secrets are revoked."))


@admin.register(AccessToken)
class AccessTokenAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["__str__", "kind", "user", "application", "expires", "last_used", "revoked_at"]
    list_filter = ["kind", "application"]
    list_select_related = ["user", "application"]
    search_fields = ["name", "user__email", "application__display_name"]
    readonly_fields = [
        "kind",
        "name",
        "user",
        "application",
        "permissions",
        "created",
        "expires",
        "last_used",
        "revoked_at",
    ]
    fields = readonly_fields
    actions = ["revoke"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(actor=request.user, token=token, channel=Channel.ADMIN)
        messages.success(request, _("The selected tokens are revoked; they work no more."))
