"""Portal forms: they check the shape of what was typed; the services decide the rest."""

import uuid

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from approvals.models import ReviewResult
from directory.models import User
from entitlements.models import Question

SELF = "self"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


def _period_fields(form, *, start=True):
    if start:
        form.fields["schedule_start"] = forms.DateTimeField(
            label=_("Starts"),
            required=False,
            widget=DateTimeLocalInput(),
            help_text=_("Leave empty to start as soon as the request is approved."),
        )
    form.fields["schedule_end"] = forms.DateTimeField(
        label=_("Ends"),
        required=False,
        widget=DateTimeLocalInput(),
        help_text=_("Leave empty for the longest period the policy allows."),
    )


def _check_period(form, cleaned):
    start, end = cleaned.get("schedule_start"), cleaned.get("schedule_end")
    if start and end and end <= start:
        form.add_error("schedule_end", _("The end must be after the start."))
    return cleaned


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search access packages"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, description or resource")}
        ),
    )


class PolicyChoiceForm(forms.Form):
    """Step one when several policies apply: which way to request the package."""

    policy = forms.ModelChoiceField(
        queryset=None,
        label=_("How do you want to request this package?"),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"invalid_choice": _("Choose one of the listed options.")},
    )

    def __init__(self, *args, policies, **kwargs):
        super().__init__(*args, **kwargs)
        from entitlements.models import AssignmentPolicy

        self.fields["policy"].queryset = AssignmentPolicy.objects.filter(
            pk__in=[p.pk for p in policies]
        )
        self.fields["policy"].label_from_instance = lambda p: p.display_name


def question_field_name(question):
    return f"q_{question.pk}"


class RequestForm(forms.Form):
    """A request for one package under one chosen policy, for me or a direct report."""

    def __init__(self, *args, policy, direct_reports=(), language=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.language = language or get_language()
        self.questions = list(policy.questions.all())
        self.direct_reports = list(direct_reports)
        self.fields["policy"] = forms.CharField(widget=forms.HiddenInput, required=False)
        self.initial.setdefault("policy", str(policy.pk))
        if self.direct_reports:
            # Chosen on the step before (the policies depend on it), carried here hidden.
            self.fields["target"] = forms.ChoiceField(
                choices=[(SELF, SELF)] + [(str(u.pk), str(u.pk)) for u in self.direct_reports],
                initial=SELF,
                required=False,
                widget=forms.HiddenInput,
                error_messages={
                    "invalid_choice": _("Choose yourself or one of your direct reports.")
                },
            )
        for question in self.questions:
            self.fields[question_field_name(question)] = self._question_field(question)
        self.fields["justification"] = forms.CharField(
            label=_("Business justification"),
            required=policy.is_requestor_justification_required,
            max_length=4000,
            widget=forms.Textarea(attrs={"rows": 4}),
            help_text=_("Tell the approvers why you need this access."),
            error_messages={"required": _("Give a business justification.")},
        )
        if policy.allow_custom_assignment_schedule:
            _period_fields(self)

    def _question_field(self, question):
        label = question.localized_text(self.language)
        common = {"label": label, "required": question.is_required}
        if question.question_type == Question.QuestionType.MULTIPLE_CHOICE:
            choices = [(c.actual_value, c.text) for c in question.choices.all()]
            if question.is_multiple_selection_allowed:
                return forms.MultipleChoiceField(
                    choices=choices, widget=forms.CheckboxSelectMultiple, **common
                )
            return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
        help_text = ""
        if question.format_hint:
            help_text = _("Expected format: %(hint)s") % {"hint": question.format_hint}
        widget = (
            forms.TextInput()
            if question.is_single_line_question
            else forms.Textarea(attrs={"rows": 4})
        )
        return forms.CharField(
            max_length=Question.MAX_ANSWER_LENGTH, widget=widget, help_text=help_text, **common
        )

    def question_fields(self):
        return [self[question_field_name(q)] for q in self.questions]

    def clean(self):
        cleaned = super().clean()
        chosen = cleaned.get("policy")
        if chosen and chosen != str(self.policy.pk):
            self.add_error(None, _("That way of requesting is not available to you; use this one."))
        return _check_period(self, cleaned)

    def chosen_target(self):
        value = self.cleaned_data.get("target") or SELF
        if value == SELF:
            return None
        return next(u for u in self.direct_reports if str(u.pk) == value)

    def answers(self):
        answers = {}
        for question in self.questions:
            value = self.cleaned_data.get(question_field_name(question))
            if value not in (None, "", []):
                answers[question.pk] = value
        return answers

    def field_for_error(self, field):
        """The form field a service error names (a service field name or a question id)."""
        if not field:
            return None
        field = str(field)
        if field in self.fields and field not in ("target", "policy"):
            return field
        for question in self.questions:
            if str(question.pk) in field:
                return question_field_name(question)
        return None


class ExtendForm(forms.Form):
    justification = forms.CharField(
        label=_("Business justification"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Tell the approvers why you need the access for longer."),
    )

    def __init__(self, *args, policy, **kwargs):
        super().__init__(*args, **kwargs)
        if policy.is_requestor_justification_required:
            self.fields["justification"].required = True
            self.fields["justification"].error_messages["required"] = _(
                "Give a business justification."
            )
        if policy.allow_custom_assignment_schedule:
            _period_fields(self, start=False)

    def field_for_error(self, field):
        return field if field in self.fields else None


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Your decision"),
        widget=forms.RadioSelect,
        choices=[(ReviewResult.APPROVED, _("Approve")), (ReviewResult.DENIED, _("Deny"))],
        error_messages={
            "required": _("Choose Approve or Deny."),
            "invalid_choice": _("Choose Approve or Deny."),
        },
    )
    justification = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The requestor sees it."),
    )

    def __init__(self, *args, justification_required=False, may_shorten=False, **kwargs):
        super().__init__(*args, **kwargs)
        if justification_required:
            self.fields["justification"].required = True
            self.fields["justification"].error_messages["required"] = _(
                "Give a reason for your decision."
            )
        if may_shorten:
            # The service checks the end against the request and the policy.
            self.fields["approved_end"] = forms.DateTimeField(
                label=_("Approve until"),
                required=False,
                widget=DateTimeLocalInput(),
                help_text=_(
                    "Optional: an earlier end than the request asks for. Leave empty to "
                    "approve the period requested."
                ),
            )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == ReviewResult.DENIED and "approved_end" in self.fields:
            # An end is only for approving: a bad one does not hold up a denial.
            self._errors.pop("approved_end", None)
            cleaned["approved_end"] = None
        return cleaned

    def field_for_error(self, field):
        return field if field in self.fields else None


class IdListField(forms.MultipleChoiceField):
    """Ids posted by checkboxes; the view keeps those the selector still offers."""

    def valid_value(self, value):
        try:
            uuid.UUID(str(value))
        except ValueError:
            return False
        return True


class BulkDecisionForm(DecisionForm):
    """Several stages decided at once, with one justification."""

    stages = IdListField(
        error_messages={
            "required": _("Select at least one request."),
            "invalid_choice": _("Select requests from the list."),
        },
    )


class DelegationForm(forms.Form):
    """An approver's delegate and the period; the service checks overlaps and decides."""

    delegate = forms.EmailField(
        label=_("Delegate's email"),
        max_length=254,
        help_text=_("They are asked, as well as you, to decide the requests arriving meanwhile."),
        error_messages={"required": _("Give the email of the person who approves for you.")},
    )
    start = forms.DateTimeField(
        label=_("From"),
        required=False,
        widget=DateTimeLocalInput(),
        help_text=_("Leave empty to start now."),
    )
    end = forms.DateTimeField(
        label=_("Until"),
        widget=DateTimeLocalInput(),
        error_messages={"required": _("Say until when they approve for you.")},
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example why, or whom to ask in case of doubt."),
    )

    def __init__(self, *args, user, now, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.now = user, now

    def clean_delegate(self):
        email = self.cleaned_data["delegate"]
        person = User.objects.filter(email__iexact=email, is_active=True).first()
        if person is None:
            raise forms.ValidationError(_("Nobody who can sign in has this email."))
        if person.pk == self.user.pk:
            raise forms.ValidationError(_("Choose someone other than yourself."))
        return person

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if end and end <= self.now:
            self.add_error("end", _("The end must be in the future."))
        elif start and end and end <= start:
            self.add_error("end", _("The end must be after the start."))
        return cleaned

    def field_for_error(self, field):
        return field if field in self.fields else None


class RevokeForm(forms.Form):
    """Why an approver takes back an approval they gave; the requestor reads it."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The requestor sees it."),
        error_messages={"required": _("Say why you revoke your approval.")},
    )

    def field_for_error(self, field):
        return field if field in self.fields else None
