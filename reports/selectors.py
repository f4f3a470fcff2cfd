"""Reads behind the reports: each takes the viewing person and returns only what they may see.

Visibility is ``restrict(viewer, "view")`` of the rows each report lists (entitlements'
permissions): a catalog owner or reader sees their catalogs' rows, a superuser everything.
Every function returns a lazy, ordered queryset; the views page it and export it.
"""

from datetime import timedelta
from functools import reduce
from operator import or_

from django.db.models import Count, Exists, F, Min, OuterRef, Prefetch, Q

from approvals.models import OPEN_STAGE_STATUSES, RequestApprovalStage, StageApprover
from directory.models import User
from entitlements.models import (
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    RequestState,
)
from entitlements.selectors import group_sources
from reviews.models import ApplyResult, Decision, ReviewInstance, ReviewItem


def _text(queryset, value, *fields):
    """Rows where any of ``fields`` contains ``value`` (case-insensitive); all rows if empty."""
    value = (value or "").strip()
    if not value:
        return queryset
    query = Q()
    for field in fields:
        query |= Q(**{f"{field}__icontains": value})
    return queryset.filter(query)


def _PERSON(path):  # noqa: N802 - reads as the columns it names
    """The columns a row shows of a person: through ``path``, their name and email."""
    return (path, f"{path}__display_name", f"{path}__email")


def _NAMED(*paths):  # noqa: N802
    """The related rows at ``paths`` with only their names (a page reads nothing else)."""
    return [column for path in paths for column in (path, f"{path}__display_name")]


def _in_catalog(queryset, catalog, path):
    """Rows whose catalog's name contains ``catalog``; all rows if it is empty."""
    return _text(queryset, catalog, f"{path}__display_name")


# ---- who has access to what ---------------------------------------------------------------


def access_held(*, viewer, user="", package="", resource="", catalog=""):
    """Resource roles people hold through an open assignment, with the package giving each."""
    grants = AssignmentResourceRole.objects.restrict(viewer, "view").filter(
        state__in=HOLDING_GRANT_STATES, assignment__state__in=OPEN_ASSIGNMENT_STATES
    )
    grants = _text(grants, user, "target__email", "target__display_name")
    grants = _text(grants, package, "assignment__access_package__display_name")
    grants = _text(grants, resource, "resource_role__resource__display_name")
    grants = _in_catalog(grants, catalog, "assignment__access_package__catalog")
    # Newest assignments first: the order of assignment_created_order_idx.
    return (
        grants.select_related(
            "target", "resource_role__resource", "assignment__access_package__catalog"
        )
        .only(
            "state",
            *_PERSON("target"),
            *_NAMED("resource_role", "resource_role__resource"),
            "assignment__schedule_start",
            "assignment__schedule_end",
            *_NAMED("assignment__access_package", "assignment__access_package__catalog"),
        )
        .order_by("-assignment__created", "-assignment_id", "pk")
    )


# ---- assignments ending soon ---------------------------------------------------------------


def assignments_ending(*, viewer, now, days, user="", package="", catalog=""):
    """Open assignments whose end falls in the next ``days`` days, soonest first."""
    assignments = Assignment.objects.restrict(viewer, "view").filter(
        state__in=OPEN_ASSIGNMENT_STATES,  # the predicate of assignment_open_end_idx
        schedule_end__gte=now,
        schedule_end__lt=now + timedelta(days=days),
    )
    assignments = _text(assignments, user, "target__email", "target__display_name")
    assignments = _text(assignments, package, "access_package__display_name")
    assignments = _in_catalog(assignments, catalog, "access_package__catalog")
    return (
        assignments.select_related("target", "access_package__catalog", "assignment_policy")
        .only(
            "schedule_start",
            "schedule_end",
            *_PERSON("target"),
            *_NAMED("access_package", "access_package__catalog", "assignment_policy"),
        )
        .order_by("schedule_end", "pk")
    )


# ---- pending requests ----------------------------------------------------------------------


def _pending(queryset, prefix=""):
    return queryset.filter(**{f"{prefix}state": RequestState.PENDING_APPROVAL})


def pending_requests(*, viewer, now, older_than_days=0, user="", approver="", catalog=""):
    """Requests waiting for an approval, oldest first, with their open stage's approvers."""
    requests = _pending(AssignmentRequest.objects.restrict(viewer, "view"))
    if older_than_days:
        requests = requests.filter(created__lte=now - timedelta(days=older_than_days))
    requests = _text(requests, user, "target__email", "target__display_name")
    if (approver or "").strip():
        waiting_on = _text(
            StageApprover.objects.filter(
                stage__request=OuterRef("pk"), stage__status__in=OPEN_STAGE_STATUSES
            ),
            approver,
            "user__email",
            "user__display_name",
        )
        requests = requests.filter(Exists(waiting_on))
    requests = _in_catalog(requests, catalog, "access_package__catalog")
    return (
        requests.select_related("target", "access_package__catalog")
        .only("created", *_PERSON("target"), *_NAMED("access_package", "access_package__catalog"))
        .order_by("created", "pk")
    )


def open_stages_of(requests):
    """{request id: its open stage with its approvers}: two queries for a page of requests."""
    approvers = StageApprover.objects.select_related("user").only("stage", *_PERSON("user"))
    stages = (
        RequestApprovalStage.objects.filter(
            request__in=[r.pk for r in requests], status__in=OPEN_STAGE_STATUSES
        )
        .only("request", "sequence")
        .prefetch_related(Prefetch("approvers", queryset=approvers.order_by("user__display_name")))
        .order_by("sequence")
    )
    return {stage.request_id: stage for stage in stages}


def approver_backlog(*, viewer, now, older_than_days=0, approver="", catalog=""):
    """Per approver: how many pending requests wait on them and since when (the bottleneck)."""
    approvers = StageApprover.objects.restrict(viewer, "view").filter(
        stage__status__in=OPEN_STAGE_STATUSES,
        stage__request__state=RequestState.PENDING_APPROVAL,
    )
    if older_than_days:
        approvers = approvers.filter(
            stage__opened_datetime__lte=now - timedelta(days=older_than_days)
        )
    approvers = _text(approvers, approver, "user__email", "user__display_name")
    approvers = _in_catalog(approvers, catalog, "stage__request__access_package__catalog")
    return (
        approvers.values("user_id", "user__display_name", "user__email")
        .annotate(waiting=Count("stage_id", distinct=True), oldest=Min("stage__opened_datetime"))
        .order_by("-waiting", "oldest", "user__display_name", "user_id")
    )


# ---- separation of duties ------------------------------------------------------------------


def _contains(value, *fields):
    """A Q: any of ``fields`` contains ``value`` (case-insensitive); None if value is empty."""
    value = (value or "").strip()
    if not value:
        return None
    query = Q()
    for field in fields:
        query |= Q(**{f"{field}__icontains": value})
    return query


def _conflicts(conditions, *, viewer, other, user, package, catalog):
    """One row per person and conflict: an open assignment of a package the viewer sees (the
    conflict is shown on the viewer's side) and what it conflicts with (``other``, a path
    through a multi-valued relation).

    Every condition goes into one ``filter()``: Django joins a multi-valued relation once per
    call, so that the conditions on ``other`` are about the same row.
    """
    conditions = [
        *conditions,
        Q(state__in=OPEN_ASSIGNMENT_STATES),
        Q(access_package__in=AccessPackage.objects.restrict(viewer, "view")),
        _contains(user, "target__email", "target__display_name"),
        _contains(package, "access_package__display_name", f"{other}__display_name"),
        _contains(catalog, "access_package__catalog__display_name"),
    ]
    return (
        Assignment.objects.filter(*[condition for condition in conditions if condition is not None])
        .values(
            assignment_id=F("id"),
            user_name=F("target__display_name"),
            user_email=F("target__email"),
            package=F("access_package__display_name"),
            catalog=F("access_package__catalog__display_name"),
            other=F(f"{other}__display_name"),
            since=F("schedule_start"),
        )
        .order_by("user_name", "user_email", "package", "other", "assignment_id")
    )


def package_conflicts(*, viewer, user="", package="", catalog=""):
    """People holding two packages one of which is declared incompatible with the other.

    A pair counts whichever of the two packages lists the other (as the product's check,
    ``incompatible_packages``). One row per person and pair, on the side of the package the
    viewer sees; when they see both, once: from the package that lists the other, or from the
    one with the lower id if both do.
    """
    declared = AccessPackage.incompatible_access_packages.through.objects
    held = "target__assignments__access_package"
    listed = declared.filter(from_accesspackage=OuterRef("access_package_id"))
    listing = declared.filter(to_accesspackage=OuterRef("access_package_id"))
    listed_back = declared.filter(
        from_accesspackage=OuterRef("to_accesspackage"),
        to_accesspackage=OuterRef("from_accesspackage"),
    )
    listed_one_way = listed.exclude(Exists(listed_back))
    unseen = AccessPackage.objects.exclude(pk__in=AccessPackage.objects.restrict(viewer, "view"))
    conditions = [
        # only packages in a declaration: lets PostgreSQL start from the few declared pairs
        Q(
            access_package__in=declared.values("from_accesspackage").union(
                declared.values("to_accesspackage")
            )
        ),
        Q(target__assignments__state__in=OPEN_ASSIGNMENT_STATES),
        Q(**{f"{held}__in": listed.values("to_accesspackage")})
        | Q(**{f"{held}__in": listing.values("from_accesspackage")}),
        Q(**{f"{held}__in": unseen})
        | Q(**{f"{held}__in": listed_one_way.values("to_accesspackage")})
        | Q(
            **{
                f"{held}__in": listed.values("to_accesspackage"),
                f"{held}_id__gt": F("access_package_id"),
            }
        ),
    ]
    return _conflicts(
        conditions, viewer=viewer, other=held, user=user, package=package, catalog=catalog
    )


def group_conflicts(*, viewer, user="", package="", catalog=""):
    """People holding a package while in a group declared incompatible with it: a member of
    any role or through a delivered grant (``group_sources``, as the product's check)."""
    other = "access_package__incompatible_groups"
    in_group = [
        Q(**{f"{other}__in": queryset.values(path)})
        for queryset, path in group_sources(OuterRef("target_id"))
    ]
    return _conflicts(
        [reduce(or_, in_group)],
        viewer=viewer,
        other=other,
        user=user,
        package=package,
        catalog=catalog,
    )


# ---- access reviews ------------------------------------------------------------------------


def reviews(*, viewer, package="", status="", catalog=""):
    """Access review instances, newest first (their results come from ``review_counts``)."""
    instances = ReviewInstance.objects.restrict(viewer, "view")
    instances = _text(instances, package, "access_package__display_name")
    if status:
        instances = instances.filter(status=status)
    instances = _in_catalog(instances, catalog, "access_package__catalog")
    return (
        instances.select_related("access_package__catalog")
        .only("start", "end", "status", *_NAMED("access_package", "access_package__catalog"))
        .order_by("-start", "pk")
    )


def review_counts(instances):
    """{instance id: {decided, undecided, approved, denied, dont_know, removed, items}}, in
    one grouped query for a page of instances (review_item_decision_idx)."""
    rows = (
        ReviewItem.objects.filter(instance__in=[i.pk for i in instances])
        .values("instance_id")
        .annotate(
            items=Count("pk"),
            undecided=Count("pk", filter=Q(decision=Decision.NOT_REVIEWED)),
            approved=Count("pk", filter=Q(decision=Decision.APPROVE)),
            denied=Count("pk", filter=Q(decision=Decision.DENY)),
            dont_know=Count("pk", filter=Q(decision=Decision.DONT_KNOW)),
            removed=Count("pk", filter=Q(apply_result=ApplyResult.REMOVED)),
        )
        .order_by()
    )
    counts = {}
    for row in rows:
        row["decided"] = row["items"] - row["undecided"]
        counts[row.pop("instance_id")] = row
    return counts


# ---- people with access who do not sign in -------------------------------------------------


def _open_assignments_of_outer_user(viewer):
    return Assignment.objects.restrict(viewer, "view").filter(
        target=OuterRef("pk"), state__in=OPEN_ASSIGNMENT_STATES
    )


def inactive_holders(*, viewer, now, days, user="", department="", catalog=""):
    """Active people holding access the viewer sees, not signed in for ``days`` days: their
    last sign-in is older, or they never signed in and are in the directory for longer."""
    holding = _open_assignments_of_outer_user(viewer)
    holding = _in_catalog(holding, catalog, "access_package__catalog")
    before = now - timedelta(days=days)
    people = User.objects.filter(
        Q(last_login__lt=before) | Q(last_login__isnull=True, created__lt=before),
        Exists(holding),
        is_active=True,
    )
    people = _text(people, user, "email", "display_name")
    people = _text(people, department, "department")
    return people.only("display_name", "email", "department", "last_login", "created").order_by(
        "display_name", "pk"
    )


def open_assignment_counts(*, viewer, people, catalog=""):
    """{user id: open assignments the viewer sees}, one grouped query for a page of people."""
    assignments = Assignment.objects.restrict(viewer, "view").filter(
        target__in=[p.pk for p in people], state__in=OPEN_ASSIGNMENT_STATES
    )
    assignments = _in_catalog(assignments, catalog, "access_package__catalog")
    return dict(
        assignments.values("target_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("target_id", "n")
    )
