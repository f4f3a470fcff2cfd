"""The admin's people and groups pages, saved through the identity services.

The directory app defines the pages; identity, a layer above, registers them again with the
saves routed through ``identity.services``, so that disabling someone in the admin, changing
their manager or department, or changing a group's members has the same consequences as the
same change from SCIM or an LDAP import (one door, one rule).
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from directory.admin import GroupAdmin as DirectoryGroupAdmin
from directory.admin import UserAdmin as DirectoryUserAdmin
from directory.models import GrantSource, Group, GroupMembership, User

from . import (
    admin_guests,  # noqa: F401 - registers the guest lifecycle's admin
    admin_importing,  # noqa: F401 - registers the directory imports' admin
    services,
)
from .services import Source

ADMIN = Source(kind=Source.ADMIN, name="Django admin")


def _source(request):
    return Source(kind=Source.ADMIN, name=ADMIN.name, id=str(request.user.pk))


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(DirectoryUserAdmin):
    """People: a new person is a joiner, a change a mover, unticking "enabled" a leaver."""

    actions = ["disable_selected"]

    @admin.action(description=_("Disable the selected people (they leave)"), permissions=["change"])
    def disable_selected(self, request, queryset):
        disabled = sum(
            services.user_disable(user=user, source=_source(request), actor=request.user)
            for user in queryset.filter(is_active=True).order_by("pk")
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d person disabled: their requests, approvals and access were handed on "
                "or ended.",
                "%(count)d people disabled: their requests, approvals and access were handed on "
                "or ended.",
                disabled,
            )
            % {"count": disabled},
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        if not change:
            password = obj.password
            user = services.user_provision(
                attributes={"email": obj.email, "display_name": obj.display_name},
                source=_source(request),
                actor=request.user,
            )
            obj.pk, obj._state.adding = user.pk, False
            obj.refresh_from_db()
            if password:
                obj.password = password
                obj.save(update_fields=["password"])
            return
        changed = set(form.changed_data)
        through_services = changed & {*services.USER_FIELDS, "is_active"}
        if through_services:
            services.user_update(
                user=User.objects.get(pk=obj.pk),
                changes={name: form.cleaned_data[name] for name in through_services},
                source=_source(request),
                actor=request.user,
            )
        # The rest (sign-in rights, Django permissions) is the admin's own; many-to-many
        # fields are saved by save_related.
        concrete = {f.name for f in User._meta.concrete_fields}
        others = (changed & concrete) - through_services
        if others:
            obj.save(update_fields=sorted(others))

    def delete_model(self, request, obj):
        # A person with history cannot be deleted (their requests protect them); one who can
        # still leaves first, so the stages they were to decide find other approvers.
        services.user_disable(user=obj, source=_source(request), actor=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.user_disable(user=user, source=_source(request), actor=request.user)
        super().delete_queryset(request, queryset)


@admin.register(Group)
class GroupAdmin(DirectoryGroupAdmin):
    """Groups: a change of direct members goes through ``group_members_change``, which
    re-evaluates the people who joined or left."""

    def save_model(self, request, obj, form, change):
        if not change:
            group = services.group_provision(
                attributes={name: form.cleaned_data[name] for name in services.GROUP_FIELDS},
                source=_source(request),
                actor=request.user,
            )
            obj.pk, obj._state.adding = group.pk, False
            obj.refresh_from_db()
            return
        changed = set(form.changed_data) & set(services.GROUP_FIELDS)
        if changed:
            services.group_update(
                group=Group.objects.get(pk=obj.pk),
                changes={name: form.cleaned_data[name] for name in changed},
                source=_source(request),
                actor=request.user,
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is not GroupMembership:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)

        def direct_member(row):
            return row.role == GroupMembership.Role.MEMBER and row.source == GrantSource.DIRECT

        joined = [row.user_id for row in formset.new_objects if direct_member(row)]
        left = [row.user_id for row in formset.deleted_objects if direct_member(row)]
        # Owners, and rows whose role or source an admin corrects, are written as they are.
        for row in formset.new_objects:
            if not direct_member(row):
                row.save()
        for row, _fields in formset.changed_objects:
            row.save()
        for row in formset.deleted_objects:
            if not direct_member(row):
                row.delete()
        services.users_reevaluate_on_commit(
            [row.user_id for row in formset.new_objects if not direct_member(row)]
            + [row.user_id for row, _fields in formset.changed_objects]
            + [row.user_id for row in formset.deleted_objects if not direct_member(row)]
        )
        services.group_members_change(
            group=form.instance,
            add=joined,
            remove=left,
            source=_source(request),
            actor=request.user,
        )
        return None
