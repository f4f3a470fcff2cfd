"""Access packages: the list I may request, a package's page, and the request form."""

from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from entitlements import selectors
from entitlements.errors import DomainError
from entitlements.models import AccessPackage, AssignmentPolicy, Channel, RequestType
from entitlements.services.requests import request_submit
from myaccess import describe
from myaccess.forms import SELF, PolicyChoiceForm, RequestForm, SearchForm, question_field_name

from .common import apply_domain_error, language, now, paginate, parse_uuid


def _with_descriptions(packages, user):
    """Attach what each package grants and, for the policies open to ``user``, their terms."""
    group_ids = selectors.member_group_ids(user)
    for package in packages:
        package.grant_names = describe.grants(package)
        policies = list(package.assignment_policies.all())
        open_to_me = selectors.highest_priority(
            [
                p
                for p in policies
                if p.is_request_allowed and selectors.policy_applies_to(p, user, group_ids)
            ]
        )
        package.policy_terms = [(p, describe.policy_sentences(p)) for p in open_to_me]
    return packages


@login_required
def package_list(request):
    form = SearchForm(request.GET or None)
    search = form.cleaned_data["q"] if form.is_valid() else ""
    packages = selectors.requestable_packages(user=request.user, search=search).prefetch_related(
        *describe.PACKAGE_PREFETCH,
        "assignment_policies__subject_sets",
    )
    page = paginate(request, packages)
    _with_descriptions(page.object_list, request.user)
    return render(
        request,
        "myaccess/packages/list.html",
        {"tab": "packages", "form": form, "search": search, "page": page, "subtab": "available"},
    )


@login_required
def assignment_list(request, which):
    active = which == "active"
    assignments = selectors.user_assignments(user=request.user, active=active).select_related(
        "assignment_policy"
    )
    page = paginate(request, assignments)
    return render(
        request,
        "myaccess/packages/assignments.html",
        {"tab": "packages", "page": page, "subtab": which, "active": active},
    )


def _package_or_404(pk):
    if parse_uuid(pk) is None:
        raise Http404
    return get_object_or_404(
        AccessPackage.objects.select_related("catalog").prefetch_related(
            *describe.PACKAGE_PREFETCH
        ),
        pk=pk,
    )


@login_required
def package_detail(request, pk):
    """A package's page; reachable by link even when hidden, saying why I cannot request it."""
    package = _package_or_404(pk)
    eligibility = selectors.eligibility(user=request.user, access_package=package, now=now())
    reports = selectors.direct_reports_for_on_behalf(user=request.user, access_package=package)
    policies = [p for p in package.assignment_policies.all() if p in eligibility.policies]
    return render(
        request,
        "myaccess/packages/detail.html",
        {
            "tab": "packages",
            "package": package,
            "grant_names": describe.grants(package),
            "eligibility": eligibility,
            "policy_terms": [(p, describe.policy_sentences(p)) for p in policies],
            "can_request_for_others": reports.exists(),
        },
    )


def _policies_for(request, package, target):
    """The policies the requestor may choose among, for themselves or for ``target``."""
    if target is None:
        result = selectors.eligibility(user=request.user, access_package=package, now=now())
        return result.policies, result.reasons
    policies = selectors.on_behalf_policies(
        actor=request.user, target=target, access_package=package
    )
    reasons = [] if policies else [_("You cannot request this access package for this person.")]
    return policies, reasons


def _load_policy(policy_id, policies):
    """The chosen policy with its questions and stages, when it is one of ``policies``."""
    pk = parse_uuid(policy_id)
    if pk is None or pk not in {p.pk for p in policies}:
        return None
    return (
        AssignmentPolicy.objects.prefetch_related(
            describe.QUESTION_PREFETCH,
            describe.STAGE_PREFETCH,
        )
        .filter(pk=pk)
        .first()
    )


def _resubmit_initial(request, package, policy):
    """What to prefill from an earlier request of mine that was denied or expired."""
    earlier_id = parse_uuid(request.GET.get("resubmit"))
    if earlier_id is None:
        return {}
    earlier = (
        selectors.user_requests(user=request.user)
        .filter(pk=earlier_id, access_package=package)
        .prefetch_related("answers")
        .first()
    )
    if earlier is None:
        return {}
    initial = {"justification": earlier.justification}
    if earlier.assignment_policy_id == policy.pk:
        initial["schedule_start"] = earlier.schedule_start
        initial["schedule_end"] = earlier.schedule_end
        by_question = {a.question_id: a.value for a in earlier.answers.all()}
        for question in policy.questions.all():
            if question.pk in by_question:
                value = by_question[question.pk]
                initial[question_field_name(question)] = (
                    value.split("\n") if question.is_multiple_selection_allowed else value
                )
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request, pk):
    """Request a package: for whom (when I manage people), which policy, then the form."""
    package = _package_or_404(pk)
    data = request.POST if request.method == "POST" else request.GET
    reports = list(
        selectors.direct_reports_for_on_behalf(user=request.user, access_package=package)
    )
    target = None
    target_id = data.get("target") or SELF
    if target_id != SELF:
        target = next((u for u in reports if str(u.pk) == target_id), None)
    if target_id != SELF and target is None:
        policies = []
        reasons = [_("You can request access for yourself and for your direct reports only.")]
    else:
        policies, reasons = _policies_for(request, package, target)
    context = {
        "tab": "packages",
        "package": package,
        "reports": reports,
        "target": target,
        "target_id": target_id,
        "reasons": reasons,
    }
    if not policies:
        if request.method == "POST":
            context["refused"] = True
        status = 403 if request.method == "POST" else 200
        return render(request, "myaccess/packages/request_unavailable.html", context, status=status)

    policy = _load_policy(data.get("policy"), policies) if len(policies) > 1 else None
    if policy is None and len(policies) == 1:
        policy = _load_policy(policies[0].pk, policies)
    if policy is None:
        choice = PolicyChoiceForm(data if "policy" in data else None, policies=policies, initial={})
        context.update(
            choice_form=choice,
            policy_terms={p.pk: describe.policy_summary(p) for p in _with_stages(policies)},
        )
        return render(request, "myaccess/packages/request_choose_policy.html", context)

    form_kwargs = {
        "policy": policy,
        "direct_reports": reports,
        "language": language(request),
    }
    if request.method == "POST":
        form = RequestForm(request.POST, **form_kwargs)
        if form.is_valid():
            chosen = form.chosen_target()
            try:
                submitted = request_submit(
                    actor=request.user,
                    target=chosen or request.user,
                    access_package=package,
                    policy=policy,
                    request_type=RequestType.ON_BEHALF_ADD if chosen else RequestType.USER_ADD,
                    justification=form.cleaned_data.get("justification", ""),
                    answers=form.answers(),
                    schedule_start=form.cleaned_data.get("schedule_start"),
                    schedule_end=form.cleaned_data.get("schedule_end"),
                    channel=Channel.PORTAL,
                    now=now(),
                )
            except DomainError as error:
                apply_domain_error(form, error)
            except IntegrityError:
                form.add_error(None, _("A request for this access package is already open."))
            else:
                return redirect("myaccess:request_submitted", pk=submitted.pk)
    else:
        initial = {"policy": str(policy.pk), "target": target_id}
        initial.update(_resubmit_initial(request, package, policy))
        form = RequestForm(initial=initial, **form_kwargs)
    context.update(
        form=form,
        policy=policy,
        several_policies=len(policies) > 1,
        policy_sentences=describe.policy_sentences(policy),
        time_zone=timezone.get_current_timezone_name(),
    )
    return render(request, "myaccess/packages/request_form.html", context)


def _with_stages(policies):
    return AssignmentPolicy.objects.filter(pk__in=[p.pk for p in policies]).prefetch_related(
        describe.STAGE_PREFETCH
    )
