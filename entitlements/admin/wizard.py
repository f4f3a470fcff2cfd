"""The guided flow: a new access package, or a new policy of a package, built step by step.

Basics → Resource roles → Requests → Requestor information → Lifecycle → Review + create, as
Entra's admin center has it. Each step is a plain form posted to the server, which keeps what
was typed in the session (one draft per flow, named by the ``draft`` query parameter) until
the last step. Each step is checked before the next by the same checks the services run
(``policy_config.policy_check``); nothing is saved until "Create", and then everything in one
transaction through the audited services (``config_save``, ``package_role_add``,
``policy_save``). A policy for an existing package takes the same steps from Requests on.
"""

import re
import secrets
from dataclasses import dataclass, field
from types import SimpleNamespace

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from directory.models import User
from entitlements import describe, permissions, validation
from entitlements.configuration import config_save
from entitlements.errors import DomainError
from entitlements.models import (
    AccessPackage,
    AllowedTargetScope,
    ApprovalStage,
    AssignmentPolicy,
    Catalog,
    Channel,
    ExpirationType,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    ResourceRole,
    StageApproverSet,
    SubjectType,
)
from entitlements.policy_config import (
    PolicyInvalid,
    QuestionPlan,
    StagePlan,
    policy_check,
    policy_save,
)
from entitlements.services.packages import package_role_add

from .durations import HumanDurationField, words
from .widgets import PeopleAutocomplete

SESSION_KEY = "package_wizard"
MAX_DRAFTS = 5  # drafts kept per session; the oldest goes first
MAX_ROLES_LISTED = 200  # resource roles listed at once; a search narrows the list
MAX_QUESTIONS = 20
CLAIM_SECONDS = 600  # a draft being created, or created, is refused a second Create this long

Purpose = PolicySubjectSet.Purpose
Approver = StageApproverSet.Purpose


# --------------------------------------------------------------------------------------
# Forms, one step each
# --------------------------------------------------------------------------------------


def _people(label, kind, admin_site, help_text=""):
    """A multiple choice of users, groups or connected organizations, by autocomplete."""
    model_field = PolicySubjectSet._meta.get_field(kind)
    return forms.ModelMultipleChoiceField(
        label=label,
        queryset=model_field.remote_field.model._default_manager.order_by("display_name"),
        required=False,
        help_text=help_text,
        widget=PeopleAutocomplete(model_field, admin_site, attrs={"class": "wizard-people"}),
    )


class EmailsField(forms.CharField):
    """Users by email, one or more, for a browser without JavaScript (the autocomplete's
    stand-in, shown inside ``<noscript>``)."""

    MAX = 100
    widget = forms.Textarea(attrs={"rows": 2, "cols": 40})

    def clean(self, value):
        text = super().clean(value)
        emails = list(dict.fromkeys(e.lower() for e in re.split(r"[\s,;]+", text or "") if e))
        if len(emails) > self.MAX:
            raise ValidationError(_("At most %(n)d emails at once.") % {"n": self.MAX})
        users = {
            u.email_lower: u
            for u in User.objects.annotate(email_lower=Lower("email")).filter(
                email_lower__in=emails
            )
        }
        unknown = [e for e in emails if e not in users]
        if unknown:
            raise ValidationError(
                _("Nobody has the email %(emails)s.") % {"emails": ", ".join(unknown)}
            )
        return [users[e] for e in emails]


class PeopleByEmail:
    """Adds an email box beside each user autocomplete; what both name is chosen."""

    def add_email_fields(self, *names):
        self.email_fields = names
        for name in names:
            self.fields[f"{name}_emails"] = EmailsField(
                label=_("%(field)s (emails)") % {"field": self.fields[name].label},
                required=False,
                help_text=_("One email per line, or separated by commas."),
            )

    def clean(self):
        data = super().clean()
        for name in getattr(self, "email_fields", ()):
            chosen = list(data.get(name) or [])
            chosen += [u for u in data.get(f"{name}_emails") or [] if u not in chosen]
            data[name] = chosen
        return data


class BasicsForm(forms.ModelForm):
    class Meta:
        model = AccessPackage
        fields = ["display_name", "description", "catalog", "is_hidden"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "cols": 60})}
        help_texts = {"description": _("Shown to people in My Access.")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        catalog = self.fields["catalog"]
        # Only the catalogs where this person may create packages (the one rule, in permissions).
        catalog.queryset = permissions.choices_for(
            user, AccessPackage, "catalog", Catalog.objects.order_by("display_name")
        )
        catalog.empty_label = _("Choose a catalog")


def role_label(role):
    """'Member of Sales team (Group)': what the list shows, and what its search matches."""
    return (
        _t("%(role)s of %(resource)s")
        % {
            "role": role.display_name,
            "resource": role.resource.display_name,
        }
        + f" ({role.resource.get_origin_system_display()})"
    )


def matches(label, query):
    """Every word of the search appears in the label as shown, whatever the case."""
    label = label.casefold()
    return all(word in label for word in query.casefold().split())


class RolesForm(forms.Form):
    roles = forms.ModelMultipleChoiceField(
        label=_("Resource roles"),
        queryset=ResourceRole.objects.none(),
        error_messages={
            "required": _("Choose at least one resource role for the package to grant.")
        },
    )

    def __init__(self, *args, catalog, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        self.fields["roles"].queryset = (
            ResourceRole.objects.filter(resource__catalog=catalog)
            .select_related("resource")
            .order_by("resource__display_name", "display_name")
        )

    def clean_roles(self):
        roles = list(self.cleaned_data["roles"])
        try:
            validation.check_package_roles(self.catalog, roles)
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return roles


class RequestsForm(PeopleByEmail, forms.ModelForm):
    class Meta:
        model = AssignmentPolicy
        fields = [
            "display_name",
            "description",
            "allowed_target_scope",
            "enable_on_behalf_requestors_to_add_access",
            "is_approval_required_for_add",
            "is_requestor_justification_required",
        ]
        labels = {"display_name": _("Policy name")}
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["display_name"].initial = _("Initial policy")
        self.fields["allowed_target_scope"].help_text = _(
            "For specific users and groups, or specific connected organizations, name them below."
        )
        self.fields["users"] = _people(_("Users who may request"), "user", admin_site)
        self.fields["groups"] = _people(_("Groups whose members may request"), "group", admin_site)
        self.fields["organizations"] = _people(
            _("Connected organizations whose users may request"),
            "connected_organization",
            admin_site,
        )
        self.add_email_fields("users")

    def _post_clean(self):
        pass  # the policy is checked whole (policy_check), with the other steps' values


class StageForm(PeopleByEmail, forms.ModelForm):
    duration_before_automatic_denial = HumanDurationField(
        label=capfirst(
            ApprovalStage._meta.get_field("duration_before_automatic_denial").verbose_name
        ),
        initial=ApprovalStage._meta.get_field("duration_before_automatic_denial").default,
        help_text=ApprovalStage._meta.get_field("duration_before_automatic_denial").help_text,
    )

    class Meta:
        model = ApprovalStage
        fields = ["duration_before_automatic_denial", "is_approver_justification_required"]

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["manager"] = forms.BooleanField(
            label=_("The requestor's manager approves"), required=False
        )
        self.fields["users"] = _people(_("Approvers"), "user", admin_site)
        self.fields["groups"] = _people(_("Groups whose members approve"), "group", admin_site)
        self.fields["fallback_users"] = _people(
            _("Fallback approvers"),
            "user",
            admin_site,
            help_text=_("They decide when the requestor has no manager."),
        )
        self.add_email_fields("users", "fallback_users")

    def has_changed(self):
        # A stage is used when it names an approver; an empty stage is left out, unchecked.
        if not self.is_bound:
            return False
        names = ("manager", "users", "groups", "fallback_users", "users_emails")
        names += ("fallback_users_emails",)
        return any(self.data.get(self.add_prefix(name)) for name in names)

    def _post_clean(self):
        pass  # checked with its policy (policy_check)


class QuestionForm(forms.ModelForm):
    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("For a multiple-choice question: one choice per line."),
    )

    class Meta:
        model = Question
        fields = ["text", "question_type", "is_required", "is_single_line_question"]
        widgets = {"text": forms.TextInput(attrs={"size": 60})}

    def has_changed(self):
        # A question is asked when it has a text; the other boxes of an empty one do not count.
        return self.is_bound and bool((self.data.get(self.add_prefix("text")) or "").strip())

    def _post_clean(self):
        pass  # checked with its policy (policy_check)

    def choice_lines(self):
        seen = []
        for line in (self.cleaned_data.get("choices") or "").splitlines():
            if line.strip() and line.strip() not in seen:
                seen.append(line.strip())
        return seen


class BaseQuestionFormSet(forms.BaseFormSet):
    def filled(self):
        return [f for f in self.forms if f.has_changed() and f.cleaned_data.get("text")]


QuestionFormSet = forms.formset_factory(
    QuestionForm, formset=BaseQuestionFormSet, extra=2, max_num=MAX_QUESTIONS, validate_max=True
)


class LifecycleForm(PeopleByEmail, forms.ModelForm):
    expiration_duration = HumanDurationField(
        label=capfirst(AssignmentPolicy._meta.get_field("expiration_duration").verbose_name),
        required=False,
        initial=AssignmentPolicy._meta.get_field("expiration_duration").default,
    )

    class Meta:
        model = AssignmentPolicy
        fields = [
            "expiration_type",
            "expiration_duration",
            "expiration_end_datetime",
            "allow_custom_assignment_schedule",
            "enable_targets_to_self_update_access",
            "is_approval_required_for_update",
            "review_is_enabled",
            "review_start_date",
            "review_recurrence",
            "review_duration_in_days",
            "review_is_self_review",
            "review_is_reviewer_justification_required",
            "review_expiration_behavior",
        ]
        widgets = {
            "expiration_end_datetime": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "review_start_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewer_manager"] = forms.BooleanField(
            label=_("Each person's manager reviews"), required=False
        )
        self.fields["reviewer_users"] = _people(_("Reviewers"), "user", admin_site)
        self.fields["reviewer_groups"] = _people(
            _("Groups whose members review"), "group", admin_site
        )
        self.fields["fallback_reviewers"] = _people(
            _("Fallback reviewers"),
            "user",
            admin_site,
            help_text=_("They review when a person has no manager."),
        )
        self.add_email_fields("reviewer_users", "fallback_reviewers")

    def clean_review_duration_in_days(self):
        days = self.cleaned_data["review_duration_in_days"]
        if days is not None and days < 1:
            raise ValidationError(_("A review lasts at least one day."))
        return days

    def _post_clean(self):
        pass  # checked with its policy (policy_check)


# --------------------------------------------------------------------------------------
# The draft: what the steps say, as unsaved rows
# --------------------------------------------------------------------------------------


@dataclass
class Draft:
    """The package and policy as the steps so far describe them, not saved."""

    package: AccessPackage
    roles: list = field(default_factory=list)
    policy: AssignmentPolicy = None
    subject_sets: list = field(default_factory=list)
    stages: list = field(default_factory=list)  # StagePlan
    questions: list = field(default_factory=list)  # QuestionPlan


def _subjects(purpose, data, *, users="users", groups="groups", orgs=None, manager=None):
    rows = []
    if manager and data.get(manager):
        rows.append(
            PolicySubjectSet(
                purpose=purpose, subject_type=SubjectType.TARGET_MANAGER, manager_level=1
            )
        )
    rows += [
        PolicySubjectSet(purpose=purpose, subject_type=SubjectType.SINGLE_USER, user=user)
        for user in data.get(users) or []
    ]
    rows += [
        PolicySubjectSet(purpose=purpose, subject_type=SubjectType.GROUP_MEMBERS, group=group)
        for group in data.get(groups) or []
    ]
    rows += [
        PolicySubjectSet(
            purpose=purpose,
            subject_type=SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
            connected_organization=org,
        )
        for org in (data.get(orgs) or [] if orgs else [])
    ]
    return rows


def _approvers(purpose, data, *, users, groups=None, manager=None):
    rows = []
    if manager and data.get(manager):
        rows.append(
            StageApproverSet(
                purpose=purpose, subject_type=SubjectType.REQUESTOR_MANAGER, manager_level=1
            )
        )
    rows += [
        StageApproverSet(purpose=purpose, subject_type=SubjectType.SINGLE_USER, user=user)
        for user in data.get(users) or []
    ]
    rows += [
        StageApproverSet(purpose=purpose, subject_type=SubjectType.GROUP_MEMBERS, group=group)
        for group in (data.get(groups) or [] if groups else [])
    ]
    return rows


class Rows(list):
    """A list read the way a related manager is (``.all()``), for the sentences."""

    def all(self):
        return self


def described(draft):
    """The draft policy as ``entitlements.describe`` reads a saved one with its prefetches."""
    stages = Rows(
        SimpleNamespace(
            sequence=plan.stage.sequence,
            duration_before_automatic_denial=plan.stage.duration_before_automatic_denial,
            approver_sets=Rows(a for a in plan.approvers if a.purpose == Approver.PRIMARY),
        )
        for plan in draft.stages
    )
    policy = SimpleNamespace(
        **{f.attname: getattr(draft.policy, f.attname) for f in AssignmentPolicy._meta.fields},
        approval_stages=stages,
    )
    package = SimpleNamespace(
        resource_role_scopes=Rows(SimpleNamespace(role=r) for r in draft.roles)
    )
    return package, policy


# --------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    fields: tuple = ()  # the policy fields and error keys this step answers for


STEPS = [
    Step("basics", _("Basics")),
    Step("roles", _("Resource roles")),
    Step(
        "requests",
        _("Requests"),
        (
            "display_name",
            "description",
            "allowed_target_scope",
            "enable_on_behalf_requestors_to_add_access",
            "is_approval_required_for_add",
            "is_requestor_justification_required",
            "policy",
            "subject_sets",
            "stages",
        ),
    ),
    Step("questions", _("Requestor information"), ("questions",)),
    Step("lifecycle", _("Lifecycle"), tuple(LifecycleForm.Meta.fields) + ("reviewers",)),
    Step("review", _("Review + create")),
]
POLICY_STEPS = [step for step in STEPS if step.name not in ("basics", "roles")]


def _owner(key):
    """The step an error key of ``policy_check`` belongs to."""
    head = key.split(".", 1)[0]
    if head == "subject_sets":
        return None  # decided by the subject's purpose (see _subject_step)
    for step in STEPS:
        if head in step.fields:
            return step.name
    return "requests"


class PackageWizard:
    """One run of the flow for one person: its steps, its draft and its forms."""

    def __init__(self, model_admin, request, token, package=None):
        self.model_admin = model_admin
        self.request = request
        self.token = token
        self.package = package
        self.steps = POLICY_STEPS if package is not None else STEPS
        drafts = request.session.get(SESSION_KEY, {})
        self.state = drafts.get(token, {"package": str(package.pk) if package else "", "data": {}})

    # --- storage -------------------------------------------------------------------------

    def save_state(self):
        drafts = dict(self.request.session.get(SESSION_KEY, {}))
        drafts.pop(self.token, None)
        drafts[self.token] = self.state
        while len(drafts) > MAX_DRAFTS:
            drafts.pop(next(iter(drafts)))
        self.request.session[SESSION_KEY] = drafts

    def forget(self):
        drafts = dict(self.request.session.get(SESSION_KEY, {}))
        drafts.pop(self.token, None)
        self.request.session[SESSION_KEY] = drafts

    def store(self, step, post, forms_=None):
        """Keep what was posted for the step's fields only (not whatever else was sent)."""
        declared = {"q"} if step == "roles" else set()  # the role search box
        for form in (forms_ if forms_ is not None else self.forms(step, post)).values():
            parts = [form] if isinstance(form, forms.BaseForm) else []
            if isinstance(form, forms.BaseFormSet):
                parts = [form.management_form, *form.forms]
            for part in parts:
                declared.update(part.add_prefix(name) for name in part.fields)
        self.state["data"][step] = {key: post.getlist(key) for key in post if key in declared}
        self.save_state()

    def stored(self, step):
        values = self.state["data"].get(step)
        if values is None:
            return None
        data = QueryDict(mutable=True)
        for key, items in values.items():
            data.setlist(key, items)
        return data

    # --- forms ---------------------------------------------------------------------------

    def catalog(self):
        if self.package is not None:
            return self.package.catalog
        basics = self.forms("basics")
        return basics["main"].cleaned_data["catalog"] if basics["main"].is_valid() else None

    def forms(self, step, data=None):
        """The forms of a step, bound to ``data`` or to what the draft holds for it."""
        cache = self.__dict__.setdefault("_forms", {})
        if data is None and step in cache:
            return cache[step]
        bound = data if data is not None else self.stored(step)
        site = self.model_admin.admin_site
        if step == "basics":
            result = {"main": BasicsForm(bound, user=self.request.user)}
        elif step == "roles":
            result = {"main": RolesForm(bound, catalog=self.catalog())}
        elif step == "requests":
            result = {"main": RequestsForm(bound, admin_site=site)}
            for n in range(1, ApprovalStage.MAX_STAGES + 1):
                result[f"stage{n}"] = StageForm(
                    bound,
                    prefix=f"stage{n}",
                    admin_site=site,
                    empty_permitted=True,
                    use_required_attribute=False,
                )
        elif step == "questions":
            result = {"main": QuestionFormSet(bound, prefix="questions")}
        elif step == "lifecycle":
            result = {"main": LifecycleForm(bound, admin_site=site)}
        else:
            result = {}
        for form in result.values():
            form.is_valid()  # cleaned_data for the draft; a stored step was valid when stored
        if data is None:
            cache[step] = result
        return result

    @staticmethod
    def valid(forms_of_step):
        return all(f.is_valid() for f in forms_of_step.values())

    # --- building the draft ---------------------------------------------------------------

    def draft(self, upto):
        """The draft from the steps before ``upto`` and ``upto`` itself (their forms valid)."""
        names = [s.name for s in self.steps]
        wanted = names[: names.index(upto) + 1]
        if self.package is not None:
            package = self.package
        else:
            basics = self.forms("basics")["main"]
            package = AccessPackage(**basics.cleaned_data)
        draft = Draft(package=package)
        if "roles" in wanted:
            draft.roles = list(self.forms("roles")["main"].cleaned_data["roles"])
        policy = AssignmentPolicy(access_package=package, display_name=_t("Initial policy"))
        draft.policy = policy
        if "requests" in wanted:
            forms_ = self.forms("requests")
            data = forms_["main"].cleaned_data
            for name in RequestsForm.Meta.fields:
                setattr(policy, name, data[name])
            # People named for a scope that does not take names (all members, nobody) are
            # left out: the scope alone decides, and nothing the review does not show is saved.
            specific = {
                AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
                AllowedTargetScope.SPECIFIC_CONNECTED_ORGANIZATION_USERS,
            }
            if policy.allowed_target_scope in specific:
                draft.subject_sets += _subjects(Purpose.ALLOWED_TARGET, data, orgs="organizations")
            # Without approval the stages are not asked for, and not saved either.
            used = ApprovalStage.MAX_STAGES if policy.is_approval_required_for_add else 0
            for n in range(1, used + 1):
                form = forms_[f"stage{n}"]
                if not form.has_changed():
                    continue
                stage_data = form.cleaned_data
                stage = ApprovalStage(
                    sequence=len(draft.stages) + 1,
                    duration_before_automatic_denial=stage_data["duration_before_automatic_denial"],
                    is_approver_justification_required=stage_data[
                        "is_approver_justification_required"
                    ],
                )
                approvers = _approvers(
                    Approver.PRIMARY, stage_data, users="users", groups="groups", manager="manager"
                )
                approvers += _approvers(
                    Approver.FALLBACK_PRIMARY, stage_data, users="fallback_users"
                )
                draft.stages.append(StagePlan(stage=stage, approvers=approvers))
        if "questions" in wanted:
            for n, form in enumerate(self.forms("questions")["main"].filled(), start=1):
                data = form.cleaned_data
                question = Question(
                    sequence=n,
                    **{name: data[name] for name in QuestionForm.Meta.fields},
                )
                choices = []
                if data["question_type"] == Question.QuestionType.MULTIPLE_CHOICE:
                    choices = [
                        QuestionChoice(sequence=i, actual_value=line[:256], text=line[:512])
                        for i, line in enumerate(form.choice_lines(), start=1)
                    ]
                draft.questions.append(QuestionPlan(question=question, choices=choices))
        if "lifecycle" in wanted:
            data = self.forms("lifecycle")["main"].cleaned_data
            for name in LifecycleForm.Meta.fields:
                setattr(policy, name, data[name])
            if policy.review_duration_in_days is None:
                policy.review_duration_in_days = 14
            draft.subject_sets += _subjects(
                Purpose.PRIMARY_REVIEWER,
                data,
                users="reviewer_users",
                groups="reviewer_groups",
                manager="reviewer_manager",
            )
            draft.subject_sets += _subjects(
                Purpose.FALLBACK_REVIEWER, data, users="fallback_reviewers", groups=None
            )
        return draft

    def check(self, draft, upto):
        """Errors of ``policy_check`` that belong to ``upto`` or a step before it: {step: [(key,
        messages)]}."""
        names = [s.name for s in self.steps]
        done = names[: names.index(upto) + 1]
        try:
            policy_check(
                draft.policy,
                subject_sets=draft.subject_sets,
                stages=draft.stages,
                questions=draft.questions,
            )
        except PolicyInvalid as error:
            found = {}
            for key, messages_ in error.message_dict.items():
                owner = _owner(key)
                if owner is None:
                    index = int(key.split(".")[1])
                    purpose = draft.subject_sets[index].purpose
                    owner = "requests" if purpose == Purpose.ALLOWED_TARGET else "lifecycle"
                if owner in done:
                    found.setdefault(owner, []).append((key, messages_))
            return found
        return {}

    def attach(self, step, problems):
        """Show ``policy_check``'s problems on the fields of the step's forms."""
        forms_ = self.forms(step)
        for key, messages_ in problems:
            parts = key.split(".")
            if parts[0] == "stages":
                form = forms_.get(f"stage{int(parts[1]) + 1}", forms_["main"])
                name = parts[2] if len(parts) > 2 else None
                if name == "approver_sets":
                    name = "users"
            elif parts[0] == "questions":
                formset = forms_["main"]
                filled = formset.filled()
                index = int(parts[1])
                form = filled[index] if index < len(filled) else None
                name = parts[2] if len(parts) > 2 else None
                if form is None:
                    formset._non_form_errors = formset.error_class(messages_)
                    continue
            else:
                form, name = forms_["main"], parts[0] if len(parts) == 1 else None
            if name not in form.fields:
                name = None
            for message in messages_:
                form.add_error(name, message)

    def first_unfinished(self, before):
        """The first step before ``before`` whose stored values do not pass, or None.

        Each step's forms are checked, then the draft of all of them once with
        ``policy_check`` (which looks up each person and group named, one query each)."""
        done = []
        for step in self.steps:
            if step.name in (before, "review"):
                break
            if self.stored(step.name) is None or not self.valid(self.forms(step.name)):
                return step.name
            done.append(step.name)
        if not done:
            return None
        problems = self.checked(done[-1])
        return next((name for name in done if problems.get(name)), None)

    def checked(self, upto):
        """``check`` of the draft up to ``upto``, once per request."""
        cache = self.__dict__.setdefault("_checks", {})
        if upto not in cache:
            cache[upto] = self.check(self.draft(upto), upto)
        return cache[upto]


# --------------------------------------------------------------------------------------
# The admin views
# --------------------------------------------------------------------------------------


class PackageWizardMixin:
    """The guided flow's pages on the access package admin (new package; new policy)."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("guided/", view(self.wizard_view), name="entitlements_accesspackage_wizard"),
            path(
                "<path:object_id>/guided-policy/",
                view(self.wizard_policy_view),
                name="entitlements_accesspackage_wizard_policy",
            ),
            *super().get_urls(),
        ]

    # --- entry points --------------------------------------------------------------------

    def wizard_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._wizard(request, package=None)

    def wizard_policy_view(self, request, object_id):
        package = self.get_object(request, object_id)
        if package is None or not permissions.can(
            request.user, "add", package, model=AssignmentPolicy
        ):
            raise PermissionDenied
        return self._wizard(request, package=package)

    def _url(self, package, token, step):
        if package is None:
            url = reverse("admin:entitlements_accesspackage_wizard")
        else:
            url = reverse("admin:entitlements_accesspackage_wizard_policy", args=[package.pk])
        return f"{url}?draft={token}&step={step}"

    def _wizard(self, request, package):
        token = request.GET.get("draft", "")
        drafts = request.session.get(SESSION_KEY, {})
        state = drafts.get(token) if isinstance(drafts, dict) else None
        expected = str(package.pk) if package else ""
        if state is None and request.method == "POST" and token:
            created = cache.get(self._claim_key(request, token))
            if created:  # a second Create of a draft already created: show what it made
                messages.info(request, _t("This draft was already created."))
                return redirect("admin:entitlements_accesspackage_change", created)
        if state is None or state.get("package") != expected:
            token = secrets.token_urlsafe(12)
            wizard = PackageWizard(self, request, token, package)
            wizard.save_state()
            return redirect(self._url(package, token, wizard.steps[0].name))
        wizard = PackageWizard(self, request, token, package)
        names = [s.name for s in wizard.steps]
        step = request.GET.get("step", "")
        if step not in names:
            return redirect(self._url(package, token, names[0]))
        if request.method == "POST":
            return self._post(request, wizard, step)
        unfinished = wizard.first_unfinished(step)
        if unfinished is not None:
            return redirect(self._url(package, token, unfinished))
        self._require_catalog(request, wizard)
        return self._render(request, wizard, step)

    def _require_catalog(self, request, wizard):
        """Everything after Basics is in a catalog this person may build packages in."""
        if wizard.package is not None:
            return
        if wizard.stored("basics") is None or not wizard.valid(wizard.forms("basics")):
            return
        if not permissions.can_manage_packages(request.user, wizard.catalog()):
            raise PermissionDenied

    def _post(self, request, wizard, step):
        names = [s.name for s in wizard.steps]
        index = names.index(step)
        unfinished = wizard.first_unfinished(step)
        if unfinished is not None:
            return redirect(self._url(wizard.package, wizard.token, unfinished))
        self._require_catalog(request, wizard)
        if step == "review":
            if "_back" in request.POST:
                return redirect(self._url(wizard.package, wizard.token, names[index - 1]))
            return self._create(request, wizard)
        if "_back" in request.POST:
            wizard.store(step, request.POST)  # kept as typed, checked again on the way forward
            return redirect(self._url(wizard.package, wizard.token, names[max(index - 1, 0)]))
        forms_ = wizard.forms(step, request.POST)
        if "_search" in request.POST or "_more" in request.POST:
            wizard.store(step, request.POST, forms_)
            wizard.__dict__.get("_forms", {}).pop(step, None)
            extra = {"query": request.POST.get("q", "")} if "_search" in request.POST else {}
            if "_more" in request.POST:
                return self._render(request, wizard, step, more=True)
            return self._render(request, wizard, step, **extra)
        if not wizard.valid(forms_):
            return self._render(request, wizard, step, forms_=forms_, status=200)
        wizard.store(step, request.POST, forms_)
        wizard.__dict__.get("_forms", {}).pop(step, None)
        if step == "basics":
            self._require_catalog(request, wizard)
            if self._catalog_changed(wizard):
                wizard.state["data"].pop("roles", None)
                wizard.save_state()
        problems = wizard.check(wizard.draft(step), step).get(step)
        if problems:
            wizard.attach(step, problems)
            return self._render(request, wizard, step)
        return redirect(self._url(wizard.package, wizard.token, names[index + 1]))

    def _catalog_changed(self, wizard):
        """The roles chosen belong to the catalog chosen; choosing another one clears them."""
        chosen = wizard.catalog()
        previous = wizard.state.get("catalog")
        wizard.state["catalog"] = str(chosen.pk) if chosen else ""
        wizard.save_state()
        return previous not in (None, wizard.state["catalog"])

    # --- creating ------------------------------------------------------------------------

    @staticmethod
    def _claim_key(request, token):
        return f"package_wizard:{request.user.pk}:{token}"

    def _create(self, request, wizard):
        draft = wizard.draft("review")
        catalog = draft.package.catalog
        if not permissions.can_manage_packages(request.user, catalog):
            raise PermissionDenied
        creating = wizard.package is None
        # One Create per draft, even double-clicked: the first claims it before saving; a
        # second one meanwhile is refused, and once created it is sent to what was made.
        claim = self._claim_key(request, wizard.token)
        if not cache.add(claim, "", timeout=CLAIM_SECONDS):
            created = cache.get(claim)
            if created:
                messages.info(request, _t("This draft was already created."))
                return redirect("admin:entitlements_accesspackage_change", created)
            messages.warning(request, _t("This draft is being created already; wait a moment."))
            return redirect("admin:entitlements_accesspackage_changelist")
        try:
            return self._save_draft(request, wizard, draft, creating, claim)
        except BaseException:
            cache.delete(claim)
            raise

    def _save_draft(self, request, wizard, draft, creating, claim):
        try:
            with transaction.atomic():
                package = draft.package
                if creating:
                    config_save(actor=request.user, obj=package, channel=Channel.ADMIN)
                    for role in draft.roles:
                        package_role_add(
                            actor=request.user,
                            access_package=package,
                            role=role,
                            channel=Channel.ADMIN,
                        )
                draft.policy.access_package = package
                policy_save(
                    actor=request.user,
                    policy=draft.policy,
                    subject_sets=draft.subject_sets,
                    stages=draft.stages,
                    questions=draft.questions,
                    channel=Channel.ADMIN,
                )
        except PolicyInvalid as error:
            cache.delete(claim)
            messages.error(request, " ".join(error.messages))
            return self._render(request, wizard, "review")
        except DomainError as error:
            cache.delete(claim)
            messages.error(request, error.message)
            return self._render(request, wizard, "review")
        except IntegrityError:
            # Something saved meanwhile conflicts (a name taken, a person removed): nothing
            # was saved, and the review says so instead of failing.
            cache.delete(claim)
            messages.error(
                request,
                _t(
                    "Nothing was created: something changed meanwhile and conflicts with this "
                    "draft. Check the steps and create again."
                ),
            )
            return self._render(request, wizard, "review")
        cache.set(claim, str(package.pk), timeout=CLAIM_SECONDS)
        wizard.forget()
        if creating:
            text = _t("The access package “%(package)s” was created with its policy “%(policy)s”.")
        else:
            text = _t("The policy “%(policy)s” was added to “%(package)s”.")
        messages.success(
            request, text % {"package": package.display_name, "policy": draft.policy.display_name}
        )
        return redirect("admin:entitlements_accesspackage_change", package.pk)

    # --- pages ---------------------------------------------------------------------------

    def _render(self, request, wizard, step, *, forms_=None, query=None, more=False, status=200):
        names = [s.name for s in wizard.steps]
        index = names.index(step)
        forms_ = forms_ if forms_ is not None else wizard.forms(step)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "package": wizard.package,
            "steps": [
                {"name": s.name, "title": s.title, "current": s.name == step, "done": i < index}
                for i, s in enumerate(wizard.steps)
            ],
            "step": step,
            "step_title": wizard.steps[index].title,
            "is_first": index == 0,
            "is_last": step == "review",
            "action": self._url(wizard.package, wizard.token, step),
            "title": (
                _t("New access package: %(step)s") % {"step": wizard.steps[index].title}
                if wizard.package is None
                else _t("New policy for %(package)s: %(step)s")
                % {"package": wizard.package.display_name, "step": wizard.steps[index].title}
            ),
            "media": self._media(forms_),
        }
        context.update(forms_)
        if step == "roles":
            context.update(self._roles_context(forms_["main"], query))
        if step == "requests":
            context["stages"] = [forms_[f"stage{n}"] for n in range(1, 4)]
        if step == "questions" and more:
            formset = forms_["main"]
            if formset.is_bound:
                data = formset.data.copy()
                try:
                    total = max(int(data.get("questions-TOTAL_FORMS", 0) or 0), 0)
                except (TypeError, ValueError):
                    total = 0
                data["questions-TOTAL_FORMS"] = str(min(total + 1, MAX_QUESTIONS))
                context["main"] = QuestionFormSet(data, prefix="questions")
        if step == "review":
            context.update(self._review_context(wizard))
        return TemplateResponse(
            request, f"admin/entitlements/wizard/{step}.html", context, status=status
        )

    @staticmethod
    def _media(forms_):
        media = forms.Media(js=["admin/js/vendor/jquery/jquery.js", "admin/js/jquery.init.js"])
        for form in forms_.values():
            media += form.media
        return media

    def _roles_context(self, form, query):
        searched = query is not None  # a search is not a "Next": no errors shown yet
        if query is None:
            query = (form.data.get("q") if form.is_bound else "") or ""
        query = query.strip()[:256]
        selected = set()
        if form.is_bound:
            selected = {str(pk) for pk in form.data.getlist("roles")}
        rows = [(role, role_label(role)) for role in form.fields["roles"].queryset]
        shown = [(r, label) for r, label in rows if matches(label, query)] if query else rows
        total = len(shown)
        shown = shown[:MAX_ROLES_LISTED]
        shown_ids = {str(r.pk) for r, _label in shown}
        return {
            "query": query,
            "searched": searched,
            "role_rows": [(r, label, str(r.pk) in selected) for r, label in shown],
            "hidden_selected": sorted(selected - shown_ids),
            "role_total": total,
            "role_more": max(total - len(shown), 0),
            "role_count": len(rows),
            "selected_count": len(selected),
        }

    def _review_context(self, wizard):
        draft = wizard.draft("review")
        package, policy = described(draft)
        problems = wizard.checked("lifecycle")
        stage_warnings = []
        for plan in draft.stages:
            stage_warnings += validation.approver_warnings(plan.stage, plan.approvers)
        warnings = validation.policy_warnings(draft.policy, stage_count=len(draft.stages))
        subjects = [s for s in draft.subject_sets if s.purpose == Purpose.ALLOWED_TARGET]
        reviewers = [s for s in draft.subject_sets if s.purpose == Purpose.PRIMARY_REVIEWER]
        fallback_reviewers = [
            s for s in draft.subject_sets if s.purpose == Purpose.FALLBACK_REVIEWER
        ]
        return {
            "draft": draft,
            "grants": describe.grants(package),
            "my_access": describe.policy_sentences(policy),
            "duration": describe.duration_sentence(policy),
            "who": self._who_sentence(draft.policy, subjects),
            "stage_sentences": [self._stage_sentence(plan) for plan in draft.stages],
            "questions": draft.questions,
            "extension": self._extension_sentence(draft.policy),
            "review": self._review_sentence(draft.policy, reviewers, fallback_reviewers),
            "warnings": warnings + stage_warnings,
            "problems": [m for found in problems.values() for _key, ms in found for m in ms],
        }

    @staticmethod
    def _stage_sentence(plan):
        def names(purpose):
            return describe.join_or(
                [describe.approver_name(a) for a in plan.approvers if a.purpose == purpose]
            )

        sentence = _t("Stage %(n)d: %(who)s, within %(time)s.") % {
            "n": plan.stage.sequence,
            "who": names(Approver.PRIMARY) or _t("nobody"),
            "time": words(plan.stage.duration_before_automatic_denial),
        }
        fallback = names(Approver.FALLBACK_PRIMARY)
        if fallback:
            sentence += " " + _t("Fallback approvers: %(who)s.") % {"who": fallback}
        if plan.stage.is_approver_justification_required:
            sentence += " " + _t("The approver must give a justification.")
        return sentence

    @staticmethod
    def _who_sentence(policy, subjects):
        scope = AllowedTargetScope(policy.allowed_target_scope)
        if not subjects:
            return _t("%(scope)s.") % {"scope": scope.label}
        return _t("%(scope)s: %(who)s.") % {
            "scope": scope.label,
            "who": ", ".join(str(s) for s in subjects),
        }

    @staticmethod
    def _extension_sentence(policy):
        if policy.expiration_type == ExpirationType.NO_EXPIRATION:
            return ""
        if not policy.enable_targets_to_self_update_access:
            return _t("People cannot extend their access themselves.")
        if policy.is_approval_required_for_update:
            return _t(
                "People can ask to extend their access; approval is required for an extension, "
                "as for a request."
            )
        return _t("People can extend their access without approval.")

    @staticmethod
    def _review_sentence(policy, reviewers, fallbacks):
        if not policy.review_is_enabled:
            return _t("No access reviews.")
        if policy.review_is_self_review:
            who = _t("each person reviews their own access")
        else:
            who = ", ".join(_reviewer_name(s) for s in reviewers) or _t("nobody")
            if fallbacks:
                who += " " + _t("(fallback: %(who)s)") % {
                    "who": ", ".join(str(s) for s in fallbacks)
                }
        return _t(
            "Reviewed %(recurrence)s from %(start)s, for %(days)d days each time, by %(who)s; "
            "if nobody decides: %(behavior)s."
        ) % {
            "recurrence": policy.get_review_recurrence_display().lower(),
            "start": date_format(policy.review_start_date, "DATE_FORMAT")
            if policy.review_start_date
            else "-",
            "days": policy.review_duration_in_days,
            "who": who,
            "behavior": policy.get_review_expiration_behavior_display().lower(),
        }


def _reviewer_name(subject):
    if subject.subject_type == SubjectType.TARGET_MANAGER:
        return _t("each person's manager")
    return str(subject)
