"""Admin pages for access packages, their policies, approval stages and questions."""

from django import forms as django_forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from directory.rules import RuleSyntaxError, parse_rule
from entitlements import forms, permissions, selectors, validation
from entitlements.errors import DomainError
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    Channel,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    ResourceRoleScope,
    StageApproverSet,
)
from entitlements.services.automatic import (
    automatic_change_refused,
    automatic_policy_changed,
    automatic_targets,
    may_change_automatic,
)
from entitlements.services.packages import package_role_add, package_role_remove

from .assign import PackageAssignmentMixin
from .base import (
    CatalogFilter,
    ConfigurationAdmin,
    ReadOnlyInlineMixin,
    ScopedInlineMixin,
)
from .whatif import PackageWhatIfMixin, PolicyWhatIfMixin
from .wizard import PackageWizardMixin


def _add_link(model, label, **initial):
    url = reverse(f"admin:entitlements_{model._meta.model_name}_add")
    query = "&".join(f"{key}={value}" for key, value in initial.items())
    return format_html('<a class="addlink" href="{}?{}">{}</a>', url, query, label)


# --------------------------------------------------------------------------------------
# Access packages
# --------------------------------------------------------------------------------------


class ResourceRoleScopeInline(ScopedInlineMixin, admin.TabularInline):
    model = ResourceRoleScope
    formset = forms.ResourceRoleScopeFormSet
    fields = ["role"]
    extra = 0
    verbose_name = _("resource role")
    verbose_name_plural = _("resource roles this package grants")

    def get_formset(self, request, obj=None, **kwargs):
        self._catalog_id = obj.catalog_id if obj is not None else None
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "role":
            kwargs["widget"] = forms.CatalogRoleSelect(
                db_field, self.admin_site, catalog_id=getattr(self, "_catalog_id", None)
            )
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "role":
            field.queryset = field.queryset.select_related("resource")
        return field


class PackagePolicyInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AssignmentPolicy
    fields = [
        "display_name",
        "allowed_target_scope",
        "is_approval_required_for_add",
        "expiration_type",
    ]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("assignment policies")

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=AssignmentPolicy)


@admin.register(AccessPackage)
class AccessPackageAdmin(
    PackageWhatIfMixin, PackageWizardMixin, PackageAssignmentMixin, ConfigurationAdmin
):
    list_display = ["display_name", "catalog", "is_hidden", "modified"]
    list_filter = [CatalogFilter.on("catalog"), "is_hidden"]
    list_select_related = ["catalog"]
    search_fields = ["display_name", "description"]
    autocomplete_fields = ["catalog", "incompatible_access_packages", "incompatible_groups"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "catalog",
                    "display_name",
                    "description",
                    "is_hidden",
                    "my_access_link",
                    "warnings",
                ]
            },
        ),
        (
            _("Separation of duties"),
            {
                "fields": [
                    "incompatible_access_packages",
                    "incompatible_groups",
                    "existing_conflicts",
                ]
            },
        ),
        (_("Assignment policies"), {"fields": ["add_policy_link"]}),
    ]
    readonly_fields = ["add_policy_link", "my_access_link", "warnings", "existing_conflicts"]
    inlines = [ResourceRoleScopeInline, PackagePolicyInline]

    def get_queryset(self, request):
        # The change page's buttons (direct assignment, the guided policy) check the
        # person's role in the package's catalog: read it with the package.
        return super().get_queryset(request).select_related("catalog")

    class Media:
        js = ["js/copy_link.js"]

    @admin.display(description=_("My Access link"))
    def my_access_link(self, obj):
        if obj is None or obj._state.adding:
            return _("Save the package first; its link is shown here.")
        url = settings.SITE_URL + reverse("myaccess:package", args=[obj.pk])
        if obj.is_hidden:
            note = _("The package is hidden: people find it in My Access only through this link.")
        else:
            note = _("Send this link to the people who should request the package.")
        return format_html(
            '<a class="myaccess-link" href="{}">{}</a> '
            '<button type="button" class="button copy-link" data-copy="{}" hidden>{}</button>'
            '<span class="copy-done" hidden>{}</span><p class="myaccess-note">{}</p>',
            url,
            url,
            url,
            _("Copy link"),
            _("Copied."),
            note,
        )

    @admin.display(description=_("new policy"))
    def add_policy_link(self, obj):
        if obj is None or obj._state.adding:
            return _("Save the package first, then add its policies.")
        return _add_link(AssignmentPolicy, _("Add an assignment policy"), access_package=obj.pk)

    @admin.display(description=_("warnings"))
    def warnings(self, obj):
        if obj is None or obj._state.adding:
            return "-"
        found = selectors.package_warnings(obj)
        if not found:
            return _("None.")
        return format_html_join("", '<p class="package-warning">{}</p>', ((w,) for w in found))

    @admin.display(description=_("people already in conflict"))
    def existing_conflicts(self, obj):
        if obj is None or obj._state.adding:
            return "-"
        people, total = selectors.package_conflicts(access_package=obj)
        if not people:
            return _("Nobody who has this package also has an incompatible package or group.")
        rows = format_html_join(
            "",
            "<li>{} &lt;{}&gt;: {}</li>",
            ((p.name, p.email, selectors.join_names(p.things)) for p in people),
        )
        heading = ngettext(
            "%(n)d person has this package and something incompatible with it:",
            "%(n)d people have this package and something incompatible with it:",
            total,
        ) % {"n": total}
        more = ""
        if total > len(people):
            more = _("… and %(n)d more.") % {"n": total - len(people)}
        return format_html(
            '<p>{}</p><ul class="sod-conflicts">{}</ul><p>{}</p>', heading, rows, more
        )

    def save_formset(self, request, form, formset, change):
        if formset.model is not ResourceRoleScope:
            return super().save_formset(request, form, formset, change)
        # The roles a package grants change through the services, so that the change
        # reaches everyone who already has the package.
        package = form.instance
        formset.save(commit=False)
        changed = {scope.pk: scope.role for scope, _fields in formset.changed_objects}
        before = ResourceRoleScope.objects.filter(pk__in=list(changed)).select_related(
            "role__resource"
        )
        removed = [scope.role for scope in formset.deleted_objects]
        removed += [scope.role for scope in before]
        added = [scope.role for scope in formset.new_objects] + list(changed.values())
        try:
            for role in removed:
                package_role_remove(
                    actor=request.user, access_package=package, role=role, channel=Channel.ADMIN
                )
            for role in added:
                package_role_add(
                    actor=request.user, access_package=package, role=role, channel=Channel.ADMIN
                )
        except DomainError as error:
            self.message_user(request, error.message, level=messages.ERROR)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for warning in selectors.package_warnings(form.instance):
            self.message_user(request, warning, level=messages.WARNING)


# --------------------------------------------------------------------------------------
# Assignment policies
# --------------------------------------------------------------------------------------


class AutomaticSubjectSetFormSet(forms.PolicySubjectSetFormSet):
    """The subject sets, and whom the policy would then assign by itself: changing that
    (automatic on or off, an automatic policy's scope or allowed targets) is for
    administrators only (``automatic_change_refused``)."""

    actor = None

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms) or may_change_automatic(self.actor):
            return
        policy = self.instance
        before = None
        if policy.pk is not None and not policy._state.adding:
            stored = AssignmentPolicy.objects.filter(pk=policy.pk).first()
            if stored is not None:
                before = automatic_targets(stored, stored.subject_sets.all())
        subjects = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        refused = automatic_change_refused(
            actor=self.actor, before=before, after=automatic_targets(policy, subjects)
        )
        if refused:
            raise django_forms.ValidationError(refused)


class PolicySubjectSetInline(ScopedInlineMixin, admin.TabularInline):
    model = PolicySubjectSet
    formset = AutomaticSubjectSetFormSet
    fields = [
        "purpose",
        "subject_type",
        "user",
        "group",
        "connected_organization",
        "manager_level",
        "membership_rule",
    ]
    autocomplete_fields = ["user", "group", "connected_organization"]
    extra = 0
    verbose_name = _("person or group")
    verbose_name_plural = _("who may request, request on behalf, or review")

    class Media:
        js = ["entitlements/rule_preview.js"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"actor": request.user})

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "membership_rule":
            # The preview (rule_preview.js) reads the URL from the field and shows, as the
            # rule is typed, how many users it matches, or where it is wrong.
            kwargs["widget"] = django_forms.Textarea(
                attrs={
                    "rows": 2,
                    "cols": 48,
                    "class": "rule-input",
                    "data-preview-url": reverse("admin:entitlements_assignmentpolicy_preview"),
                }
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class PolicyStageInline(ScopedInlineMixin, admin.TabularInline):
    model = ApprovalStage
    formset = forms.PolicyStageFormSet
    fields = [
        "sequence",
        "duration_before_automatic_denial",
        "is_approver_justification_required",
        "is_escalation_enabled",
        "duration_before_escalation",
        "quorum_mode",
        "quorum_count",
        "approvers_may_shorten",
    ]
    show_change_link = True
    extra = 0
    max_num = ApprovalStage.MAX_STAGES
    verbose_name_plural = _("approval stages (approvers are set on each stage's page)")

    def has_add_permission(self, request, obj):
        return False  # a stage is added on its own page, together with its approvers


class PolicyQuestionInline(ScopedInlineMixin, admin.TabularInline):
    model = Question
    formset = forms.PolicyQuestionFormSet
    fields = ["sequence", "text", "question_type", "is_required", "is_answer_editable"]
    show_change_link = True
    extra = 0
    verbose_name_plural = _("questions (choices and translations are set on each question's page)")


@admin.register(AssignmentPolicy)
class AssignmentPolicyAdmin(PolicyWhatIfMixin, ConfigurationAdmin):
    list_display = [
        "display_name",
        "access_package",
        "allowed_target_scope",
        "is_approval_required_for_add",
        "expiration_type",
    ]
    list_filter = [
        CatalogFilter.on("access_package__catalog"),
        "allowed_target_scope",
        "is_approval_required_for_add",
    ]
    list_select_related = ["access_package"]
    search_fields = ["display_name", "access_package__display_name"]
    autocomplete_fields = ["access_package"]
    readonly_fields = ["add_stage_link"]
    fieldsets = [
        (None, {"fields": ["access_package", "display_name", "description"]}),
        (_("Who may request"), {"fields": ["allowed_target_scope"]}),
        (
            _("Requestor settings"),
            {
                "fields": [
                    "enable_targets_to_self_add_access",
                    "enable_targets_to_self_update_access",
                    "enable_targets_to_self_remove_access",
                    "allow_custom_assignment_schedule",
                    "enable_on_behalf_requestors_to_add_access",
                    "enable_on_behalf_requestors_to_update_access",
                    "enable_on_behalf_requestors_to_remove_access",
                ]
            },
        ),
        (
            _("Approval"),
            {
                "fields": [
                    "is_approval_required_for_add",
                    "is_approval_required_for_update",
                    "is_requestor_justification_required",
                    "add_stage_link",
                ]
            },
        ),
        (
            _("Expiration"),
            {"fields": ["expiration_type", "expiration_end_datetime", "expiration_duration"]},
        ),
        (
            _("Automatic assignment"),
            {
                "fields": ["request_access_for_allowed_targets"],
                "description": _(
                    "An automatic policy gives the package to everyone its rule matches (add a "
                    "subject “Users a rule over attributes matches” with purpose “May request”) "
                    "and takes it back, after the grace period, from those who stop matching."
                ),
            },
        ),
        (
            _("Losing eligibility"),
            {
                "fields": [
                    "remove_access_when_target_leaves_allowed_targets",
                    "grace_period_before_access_removal",
                ]
            },
        ),
        (
            _("Access reviews"),
            {
                "classes": ["collapse"],
                "fields": [
                    "review_is_enabled",
                    "review_start_date",
                    "review_recurrence",
                    "review_duration_in_days",
                    "review_is_self_review",
                    "review_is_reviewer_justification_required",
                    "review_is_recommendation_enabled",
                    "review_is_auto_apply_enabled",
                    "review_expiration_behavior",
                ],
            },
        ),
        (_("Notifications"), {"fields": ["is_assignment_notification_disabled"]}),
    ]
    inlines = [PolicySubjectSetInline, PolicyStageInline, PolicyQuestionInline]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not may_change_automatic(request.user):
            # Whom a policy assigns without a request is an administrator's decision.
            fields.append("request_access_for_allowed_targets")
            if obj is not None and obj.request_access_for_allowed_targets:
                fields.append("allowed_target_scope")
        return fields

    @admin.display(description=_("new stage"))
    def add_stage_link(self, obj):
        if obj is None or obj._state.adding:
            return _("Save the policy first, then add its approval stages.")
        count = obj.approval_stages.count()
        if count >= ApprovalStage.MAX_STAGES:
            return _("This policy has the maximum of three stages.")
        return _add_link(
            ApprovalStage,
            _("Add approval stage %(n)s") % {"n": count + 1},
            policy=obj.pk,
            sequence=count + 1,
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        policy = form.instance
        for warning in validation.policy_warnings(
            policy, stage_count=policy.approval_stages.count()
        ):
            self.message_user(request, warning, level=messages.WARNING)
        if policy.request_access_for_allowed_targets:
            automatic_policy_changed(policy)
            self.message_user(
                request,
                _("The rule is being applied: people it matches get the package in a moment."),
                level=messages.INFO,
            )

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("preview-rule/", preview, name="entitlements_assignmentpolicy_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """Whom a rule typed on the policy page matches, before it is saved (JSON)."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        policy = None
        policy_id = request.GET.get("policy", "")
        if policy_id:
            policy = self.get_object(request, policy_id)
            if policy is None or not self.has_change_permission(request, policy):
                raise PermissionDenied
        try:
            rule = parse_rule(request.GET.get("rule", ""))
        except RuleSyntaxError as exc:
            return JsonResponse(
                {
                    "error": exc.message,
                    "line": exc.line,
                    "column": exc.column,
                    "pointed": exc.pointed(),
                }
            )
        preview = selectors.rule_preview(rule=rule, policy=policy)
        return JsonResponse(
            {
                "rule": str(rule),
                "count": preview.count,
                "names": preview.names,
                "added": preview.added,
                "lost": preview.lost,
            }
        )


# --------------------------------------------------------------------------------------
# Approval stages
# --------------------------------------------------------------------------------------


class StageApproverSetInline(ScopedInlineMixin, admin.TabularInline):
    model = StageApproverSet
    formset = forms.StageApproverSetFormSet
    fields = ["purpose", "subject_type", "user", "group", "manager_level"]
    autocomplete_fields = ["user", "group"]
    extra = 1
    verbose_name = _("approver")
    verbose_name_plural = _("approvers, fallback approvers and escalation approvers")

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "subject_type":
            kwargs["choices"] = [
                (value, label)
                for value, label in db_field.choices
                if value in StageApproverSet.ALLOWED_TYPES
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class BackToPolicyAfterSave:
    """A stage or a question is part of its policy: "Save" goes back to the policy's page."""

    def response_add(self, request, obj, post_url_continue=None):
        return self._to_policy(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._to_policy(request, obj, super().response_change(request, obj))

    def _to_policy(self, request, obj, response):
        stays = {"_continue", "_addanother", "_saveasnew", IS_POPUP_VAR}
        if stays & set(request.POST) or response.status_code != 302:
            return response
        if not permissions.can(request.user, "view", obj.policy, model=AssignmentPolicy):
            return response
        return redirect("admin:entitlements_assignmentpolicy_change", obj.policy_id)


@admin.register(ApprovalStage)
class ApprovalStageAdmin(BackToPolicyAfterSave, ConfigurationAdmin):
    form = forms.ApprovalStageForm
    list_display = ["__str__", "policy", "sequence", "duration_before_automatic_denial"]
    list_filter = [CatalogFilter.on("policy__access_package__catalog"), "is_escalation_enabled"]
    list_select_related = ["policy__access_package"]
    search_fields = ["policy__display_name", "policy__access_package__display_name"]
    autocomplete_fields = ["policy"]
    fields = [
        "policy",
        "sequence",
        "duration_before_automatic_denial",
        "is_approver_justification_required",
        "is_escalation_enabled",
        "duration_before_escalation",
        "quorum_mode",
        "quorum_count",
        "approvers_may_shorten",
    ]
    inlines = [StageApproverSetInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        stage = form.instance
        for warning in validation.approver_warnings(stage, list(stage.approver_sets.all())):
            self.message_user(request, warning, level=messages.WARNING)


# --------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------


class QuestionChoiceInline(ScopedInlineMixin, admin.TabularInline):
    model = QuestionChoice
    formset = forms.QuestionChoiceFormSet
    fields = ["sequence", "actual_value", "text"]
    extra = 0


class QuestionLocalizationInline(ScopedInlineMixin, admin.TabularInline):
    model = QuestionLocalization
    fields = ["language_code", "text"]
    extra = 0


@admin.register(Question)
class QuestionAdmin(BackToPolicyAfterSave, ConfigurationAdmin):
    list_display = ["text", "policy", "question_type", "is_required", "sequence"]
    list_filter = [CatalogFilter.on("policy__access_package__catalog"), "question_type"]
    list_select_related = ["policy__access_package"]
    search_fields = ["text", "policy__display_name"]
    autocomplete_fields = ["policy"]
    fields = [
        "policy",
        "sequence",
        "text",
        "question_type",
        "is_required",
        "is_answer_editable",
        "is_single_line_question",
        "regex_pattern",
        "format_hint",
        "is_multiple_selection_allowed",
    ]
    inlines = [QuestionChoiceInline, QuestionLocalizationInline]
