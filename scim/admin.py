"""SCIM provisioning clients in the admin, for superusers only.

Adding a client makes its bearer token and shows it once, on the page that answers the
form; "New token" on the client's page replaces it (the old one stops working). Clients
are revoked with the changelist action, never deleted, so the audit trail keeps them.
Every change goes through ``scim.tokens`` (audited with channel ``admin``).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from entitlements.errors import InvalidRequest
from entitlements.models import Channel

from .models import ProvisioningClient
from .tokens import client_create, client_match_existing_set, client_revoke, client_token_rotate


class ProvisioningClientForm(forms.ModelForm):
    class Meta:
        model = ProvisioningClient
        fields = ["name", "match_existing"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if self.instance._state.adding and (
            ProvisioningClient.objects.filter(name__iexact=name).exists()
        ):
            raise forms.ValidationError(_("A provisioning client with this name exists."))
        return name


@admin.register(ProvisioningClient)
class ProvisioningClientAdmin(admin.ModelAdmin):
    form = ProvisioningClientForm
    list_display = ["name", "token_shown", "active", "last_used", "revoked_at", "created"]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["token_shown", "active", "last_used", "revoked_at", "created", "rotate"]
    actions = ["revoke"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "match_existing"]
        return [
            "name",
            "match_existing",
            "token_shown",
            "active",
            "last_used",
            "revoked_at",
            "created",
            "rotate",
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["name", *self.readonly_fields] if obj is not None else []

    @admin.display(description=_("token"))
    def token_shown(self, obj):
        return f"{obj.hint}…" if obj.hint else "—"

    @admin.display(description=_("new token"))
    def rotate(self, obj):
        if obj.revoked_at is not None:
            return "—"
        url = reverse("admin:scim_provisioningclient_rotate", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">{}</a> {}',
            url,
            _("New token"),
            _("the current token stops working"),
        )

    def save_model(self, request, obj, form, change):
        if change:
            # The name is fixed; tokens change with "New token", "Revoke".
            client_match_existing_set(
                client=obj,  # the service reads the row again, locked
                match_existing=form.cleaned_data["match_existing"],
                actor=request.user,
                channel=Channel.ADMIN,
            )
            return
        client, value = client_create(
            name=obj.name,
            match_existing=form.cleaned_data["match_existing"],
            actor=request.user,
            channel=Channel.ADMIN,
        )
        obj.pk, obj._state.adding = client.pk, False
        request._scim_token = (client, value)

    def log_addition(self, request, obj, message):
        return None  # audited by client_create

    def log_change(self, request, obj, message):
        return None

    def response_add(self, request, obj, post_url_continue=None):
        client, value = request._scim_token
        return self._token_page(request, client, value)

    def _token_page(self, request, client, value):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "client": client,
            "value": value,
            "scim_url": request.build_absolute_uri("/scim/v2"),
            "title": _("Token for %(name)s") % {"name": client.name},
        }
        response = render(request, "admin/scim/token_created.html", context)
        add_never_cache_headers(response)
        return response

    def get_urls(self):
        rotate = path(
            "<uuid:pk>/rotate/",
            self.admin_site.admin_view(self.rotate_view),
            name="scim_provisioningclient_rotate",
        )
        return [rotate, *super().get_urls()]

    def rotate_view(self, request, pk):
        """GET asks to confirm; POST makes the new token and shows it once."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        client = get_object_or_404(ProvisioningClient, pk=pk)
        if request.method == "POST":
            try:
                value = client_token_rotate(client=client, actor=request.user)
            except InvalidRequest as exc:
                messages.error(request, str(exc))
            else:
                return self._token_page(request, client, value)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "client": client,
            "title": _("New token for %(name)s") % {"name": client.name},
        }
        return render(request, "admin/scim/token_rotate.html", context)

    @admin.action(description=_("Revoke the selected clients"), permissions=["change"])
    def revoke(self, request, queryset):
        for client in queryset.filter(revoked_at__isnull=True):
            client_revoke(client=client, actor=request.user, channel=Channel.ADMIN)
        messages.success(request, _("The selected clients are revoked; their tokens work no more."))
