"""The "Preview the effect" button of the policy and package change pages.

It posts the change form like "Save" does. The form and its inlines are validated as for a
save, then, instead of saving, the page is shown again with the posted values and a box
saying what the change would do (``entitlements.services.whatif``). Nothing is written: the
preview takes the place of the last formset, whose ``is_valid()`` computes the box and answers
False, so Django's change view goes on to render the form instead of saving it. The change
view's own permission check (a POST needs change permission) applies unchanged.
"""

from django.forms.utils import ErrorList

from entitlements.models import AccessPackage, PolicySubjectSet
from entitlements.services.whatif import package_whatif, policy_whatif

PREVIEW = "_whatif"


class _Preview:
    """A stand-in formset, last in the list, that computes the preview once the form and
    the real formsets are valid."""

    def __init__(self, model_admin, request, formsets):
        self.model_admin = model_admin
        self.request = request
        self.formsets = formsets

    def is_valid(self):
        form = getattr(self.request, "_whatif_form", None)
        if form is not None and all(formset.is_valid() for formset in self.formsets):
            self.request.whatif = self.model_admin.whatif(form, self.formsets)
        return False

    def non_form_errors(self):
        return ErrorList()

    errors = ()


class WhatIfAdminMixin:
    """Adds the preview to a ConfigurationAdmin's change page (see the module docstring)."""

    def whatif(self, form, formsets):
        raise NotImplementedError

    def _create_formsets(self, request, obj, change):
        formsets, inline_instances = super()._create_formsets(request, obj, change)
        if change and request.method == "POST" and PREVIEW in request.POST:
            formsets = [*formsets, _Preview(self, request, formsets)]
        return formsets, inline_instances

    def save_form(self, request, form, change):
        # Called once the form is valid, before the formsets are checked.
        if change and PREVIEW in request.POST:
            request._whatif_form = form
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        # Never reached on a change page: the preview keeps the form unsaved. The add page
        # has no preview, so a preview field posted there is ignored and the object saved.
        if change and PREVIEW in request.POST:
            raise AssertionError("a preview must not save")
        return super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["whatif"] = getattr(request, "whatif", None)
        context["whatif_button"] = PREVIEW
        return super().render_change_form(request, context, add, change, form_url, obj)


class PolicyWhatIfMixin(WhatIfAdminMixin):
    """On the policy page: who would lose access, who could newly request."""

    def whatif(self, form, formsets):
        subjects = []
        for formset in formsets:
            if formset.model is PolicySubjectSet:
                subjects = [
                    f.instance
                    for f in formset.forms
                    if f.cleaned_data and not f.cleaned_data.get("DELETE", False)
                ]
                break
        else:
            subjects = list(PolicySubjectSet.objects.filter(policy=form.instance))
        return policy_whatif(policy=form.instance, subjects=subjects)


class PackageWhatIfMixin(WhatIfAdminMixin):
    """On the package page: what its incompatible packages and groups would do."""

    def whatif(self, form, formsets):
        stored = AccessPackage.objects.get(pk=form.instance.pk)
        data = form.cleaned_data
        return package_whatif(
            access_package=stored,
            incompatible_packages_after=list(
                data.get("incompatible_access_packages", stored.incompatible_access_packages.all())
            ),
            incompatible_groups_after=list(
                data.get("incompatible_groups", stored.incompatible_groups.all())
            ),
        )
