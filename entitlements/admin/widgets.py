"""Widgets shared by the admin's own forms (the wizard, direct and bulk assignment)."""

from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.core.exceptions import ValidationError


class PeopleAutocomplete(AutocompleteSelectMultiple):
    """The admin's autocomplete, which looks up the posted values to show them chosen: a value
    that is not an id of the model (typed by hand, "zzz") is left out instead of failing the
    page; the field itself refuses it with its message."""

    def optgroups(self, name, value, attr=None):
        to_python = self.field.target_field.to_python
        kept = []
        for item in value:
            try:
                to_python(item)
            except ValidationError:
                continue
            kept.append(item)
        return super().optgroups(name, kept, attr)
