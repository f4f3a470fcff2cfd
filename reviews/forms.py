"""Forms of the Access reviews tab: they validate input; the services decide."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Decision

DECISION_CHOICES = [
    (Decision.APPROVE, _("Approve")),
    (Decision.DENY, _("Deny")),
    (Decision.DONT_KNOW, _("Don't know")),
]


class ReviewDecisionForm(forms.Form):
    """One decision, with its justification, for one or many review items."""

    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=DECISION_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose approve, deny or don't know.")},
    )
    justification = forms.CharField(
        label=_("Reason"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
