"""Helpers for driving admin pages in tests: read a rendered form back into POST data."""

from django.forms import CheckboxInput, MultiWidget
from django.urls import reverse

from entitlements.models import AdminRole, RoleAssignment


def give_role(user, role, catalog=None, source=RoleAssignment.Source.DIRECT):
    if role == AdminRole.CATALOG_CREATOR:
        catalog = None
    return RoleAssignment.objects.create(principal=user, role=role, catalog=catalog, source=source)


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _put(data, key, widget, value):
    widget = getattr(widget, "widget", widget)  # unwrap RelatedFieldWidgetWrapper
    if isinstance(widget, MultiWidget):
        values = value if isinstance(value, list | tuple) else widget.decompress(value)
        for index, (sub, sub_value) in enumerate(zip(widget.widgets, values, strict=False)):
            _put(data, f"{key}_{index}", sub, sub_value)
    elif isinstance(widget, CheckboxInput):
        if value:
            data[key] = "on"
    elif value is None:
        if not getattr(widget, "allow_multiple_selected", False):
            data[key] = ""
    elif isinstance(value, list | tuple):
        data[key] = [str(getattr(v, "pk", v)) for v in value]
    else:
        formatted = widget.format_value(getattr(value, "pk", value))
        data[key] = "" if formatted is None else formatted


def form_data(form):
    data = {}
    for name, field in form.fields.items():
        _put(data, form[name].html_name, field.widget, form[name].value())
    return data


def page_data(response):
    """The POST data that submits an admin add/change page exactly as it was rendered."""
    context = response.context
    data = form_data(context["adminform"].form)
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    data["_save"] = "Save"
    return data


def add_row(data, prefix, **fields):
    """Append one row to an inline formset in ``data``."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in fields.items():
        if isinstance(value, bool):
            if value:
                data[f"{prefix}-{index}-{name}"] = "on"
            continue
        data[f"{prefix}-{index}-{name}"] = str(getattr(value, "pk", value))
    return index


def errors_of(response):
    """Every error message on a re-rendered admin page, form and inlines, as one list."""
    context = response.context
    messages = []
    form = context["adminform"].form
    for field_errors in form.errors.values():
        messages += list(field_errors)
    for inline in context["inline_admin_formsets"]:
        messages += list(inline.formset.non_form_errors())
        for form_errors in inline.formset.errors:
            for field_errors in form_errors.values():
                messages += list(field_errors)
    return messages
