"""Admin forms and inline formsets of the configuration model.

They gather what a page would save and hand it to ``entitlements.validation``; errors land on
the field they name, or above the inline when they concern the rows as a whole.
"""

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from . import permissions, validation
from .configuration import ORIGIN_FIELDS, resource_add_check, resource_origin_id
from .errors import DomainError
from .models import AdminRole, ApprovalStage, OriginSystem, Resource, RoleAssignment


def _live_forms(formset):
    """The forms of a formset that will be saved: filled in and not marked for deletion."""
    return [
        form
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
    ]


def _report(error, form=None):
    """Put a check's errors on the form fields they name; return the others."""
    leftover = []
    for field, messages in error.message_dict.items():
        if form is not None and field in form.fields:
            for message in messages:
                form.add_error(field, message)
        else:
            leftover.extend(messages)
    return leftover


class CatalogRoleSelect(AutocompleteSelect):
    """Autocomplete of resource roles that asks only for the roles of one catalog."""

    def __init__(self, field, admin_site, *, catalog_id=None, **kwargs):
        super().__init__(field, admin_site, **kwargs)
        self.catalog_id = catalog_id

    def get_url(self):
        url = super().get_url()
        return f"{url}?catalog={self.catalog_id}" if self.catalog_id else url


# --------------------------------------------------------------------------------------
# Catalogs, roles and resources
# --------------------------------------------------------------------------------------


class RoleAssignmentForm(forms.ModelForm):
    """Giving an admin role; ``user`` (who gives it) is set by the admin for each request."""

    user = None

    class Meta:
        model = RoleAssignment
        fields = ["principal", "role", "catalog"]

    def clean(self):
        cleaned = super().clean()
        role, catalog = cleaned.get("role"), cleaned.get("catalog")
        if role == AdminRole.CATALOG_CREATOR:
            if catalog is not None:
                self.add_error(
                    "catalog", _("Catalog creator is held for all catalogs: leave it empty.")
                )
            elif not permissions.is_superuser(self.user):
                self.add_error("role", _("Only a superuser can make someone a catalog creator."))
        elif role and catalog is None and "catalog" in self.fields:
            self.add_error("catalog", _("Choose the catalog this role is for."))
        return cleaned


class ResourceAddForm(forms.ModelForm):
    """Adding a group, application, site or admin roles to a catalog."""

    user = None
    ORIGIN_FIELDS = ORIGIN_FIELDS

    class Meta:
        model = Resource
        fields = [
            "catalog",
            "origin_system",
            "group",
            "application",
            "site",
            "role_catalog",
            "display_name",
            "description",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["display_name"].required = False
        self.fields["display_name"].help_text = _(
            "Empty: the name of the group, application or site."
        )

    def clean(self):
        cleaned = super().clean()
        origin = cleaned.get("origin_system")
        if not origin:
            return cleaned
        wanted = self.ORIGIN_FIELDS.get(origin)
        for field in self.ORIGIN_FIELDS.values():
            if field != wanted and cleaned.get(field):
                self.add_error(
                    field,
                    _("Leave this empty: the resource is a %(kind)s.")
                    % {"kind": OriginSystem(origin).label.lower()},
                )
        if origin != OriginSystem.DIRECTORY_ROLE and not cleaned.get(wanted):
            self.add_error(wanted, _("Choose the %(field)s to add.") % {"field": wanted})
        if self.errors or not cleaned.get("catalog"):
            return cleaned
        try:
            # The service checks the same when it adds; asked here, the refusal is a field error.
            resource_add_check(
                actor=self.user,
                catalog=cleaned["catalog"],
                origin_system=origin,
                **{field: cleaned.get(field) for field in self.ORIGIN_FIELDS.values()},
            )
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
            return cleaned
        candidate = Resource(
            catalog=cleaned["catalog"],
            origin_system=origin,
            **{field: cleaned.get(field) for field in self.ORIGIN_FIELDS.values()},
        )
        duplicate = Resource.objects.filter(
            catalog=cleaned["catalog"],
            origin_system=origin,
            origin_id=resource_origin_id(candidate),
        ).exists()
        if duplicate:
            self.add_error(
                wanted,
                _("This is already a resource of the catalog %(catalog)s.")
                % {"catalog": cleaned["catalog"]},
            )
        return cleaned


# --------------------------------------------------------------------------------------
# Packages and policies
# --------------------------------------------------------------------------------------


class ResourceRoleScopeFormSet(BaseInlineFormSet):
    """The roles a package grants: all from resources of the package's own catalog."""

    def clean(self):
        super().clean()
        if not self.instance.catalog_id:
            return
        catalog = self.instance.catalog
        for form in _live_forms(self):
            role = form.cleaned_data.get("role")
            if role is None:
                continue
            try:
                validation.check_package_roles(catalog, [role])
            except ValidationError as error:
                _report(error, form)


class PolicySubjectSetFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        subjects = [form.instance for form in _live_forms(self)]
        leftover = []
        for check in (validation.check_policy_subjects, validation.check_policy_reviewers):
            try:
                check(self.instance, subjects)
            except ValidationError as error:
                leftover += _report(error)
        if leftover:
            raise ValidationError(leftover)


class PolicyStageFormSet(BaseInlineFormSet):
    """The policy's stages; their approvers are edited on each stage's own page."""

    def clean(self):
        super().clean()
        live = _live_forms(self)
        leftover = []
        try:
            validation.check_stage_count(self.instance, stages=[f.instance for f in live])
        except ValidationError as error:
            leftover += _report(error)
        for form in live:
            stage = form.instance
            approvers = [] if stage._state.adding else list(stage.approver_sets.all())
            try:
                validation.check_stage_approvers(stage, approvers)
            except ValidationError as error:
                for message in _report(error, form):
                    form.add_error(None, message)
        if leftover:
            raise ValidationError(leftover)


class PolicyQuestionFormSet(BaseInlineFormSet):
    """The policy's questions; choices and translations are edited on each question's page."""

    def clean(self):
        super().clean()
        for form in _live_forms(self):
            question = form.instance
            choices = [] if question._state.adding else list(question.choices.all())
            try:
                validation.check_question_choices(question, choices)
            except ValidationError as error:
                _report(error, form)


class ApprovalStageForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        policy = cleaned.get("policy")
        if policy is None or self.errors:
            return cleaned
        others = list(policy.approval_stages.exclude(pk=self.instance.pk))
        stage = ApprovalStage(policy=policy, sequence=cleaned.get("sequence"))
        try:
            validation.check_stage_count(policy, stages=[*others, stage])
            validation.check_stage_sequence(stage, other_sequences=[s.sequence for s in others])
        except ValidationError as error:
            for message in _report(error, self):
                self.add_error(None, message)
        return cleaned


class StageApproverSetFormSet(BaseInlineFormSet):
    """The approvers of one stage, checked together with the stage's escalation setting."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        approvers = [form.instance for form in _live_forms(self)]
        try:
            validation.check_stage_approvers(self.instance, approvers)
        except ValidationError as error:
            raise ValidationError(_report(error)) from None


class QuestionChoiceFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        choices = [form.instance for form in _live_forms(self)]
        try:
            validation.check_question_choices(self.instance, choices)
        except ValidationError as error:
            raise ValidationError(_report(error)) from None
