"""The wrong person, on every route and method of the API, is refused and changes nothing.

The routes come from the URL conf (every ``/v1.0/`` pattern and the methods its view
answers); ``EXPECT`` says, for each, which objects of the test organisation fill the URL,
what body a write sends (one the right person could send) and which people are the wrong
ones. A route with no entry fails the test, so a new endpoint cannot be added without
saying who may not call it.

Every call by a wrong caller must answer 401, 403 or 404 in Graph's error shape (405 where
the view answers the method to nobody; a list may answer 200 when it shows none of the rows
named in ``hidden``), and the database must be exactly as before:
on PostgreSQL every row of every governed table (audit events and the email outbox
included) is compared by checksum; on SQLite the row counts.

The callers: nobody (401), the people without the needed role (personal tokens with every
delegated permission), an application holding every permission except the ones the route
accepts, and, for a write, an application holding only read permissions.
"""

import re
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import permissions as drf_permissions

from api.permissions import (
    APPLICATION_PERMISSIONS,
    DELEGATED_PERMISSIONS,
    DIRECTORY_READ_ALL,
    EM_READ,
    GROUP_MEMBER_READ_ALL,
    GROUP_READ_ALL,
    REVIEW_READ,
    USER_READ_ALL,
)
from tests.api.conftest import ApiClient, issue_app_token, issue_user_token, make_app
from tests.api.world import build_world

pytestmark = pytest.mark.django_db

EM = "/v1.0/identityGovernance/entitlementManagement"
READ_ONLY = (EM_READ, REVIEW_READ, USER_READ_ALL, GROUP_READ_ALL, GROUP_MEMBER_READ_ALL)
READ_ONLY += (DIRECTORY_READ_ALL,)

# The people of tests/api/world.py who hold no role on catalog A, and who may not write it.
OUT, REQ, READER, OTHER, APPROVER = "outsider", "requester", "reader", "other_owner", "approver"
NO_ROLE = frozenset({OUT, REQ, OTHER})
NOT_WRITERS = NO_ROLE | {READER}
NOBODY = frozenset()  # every signed-in person may call it (on their own things)


@dataclass(frozen=True)
class Rule:
    """Who is wrong for one route and method, and how to call it."""

    wrong: frozenset = NO_ROLE
    ids: dict = field(default_factory=dict)  # URL argument -> world object, or "=literal"
    body: object = None  # dict, or a function of the world giving one
    hidden: tuple = ()  # a list: world objects a wrong person's 200 must not show


def R(wrong=NO_ROLE, **ids):  # noqa: N802 - reads as a table
    return Rule(frozenset(wrong), ids)


def W(wrong=NOT_WRITERS, body=None, **ids):  # noqa: N802
    return Rule(frozenset(wrong), ids, body=body if body is not None else {})


def L(hidden, wrong=NO_ROLE, **ids):  # noqa: N802
    return Rule(frozenset(wrong), ids, hidden=tuple(hidden))


def _ref(path):
    return lambda w: {"@odata.id": f"http://testserver/v1.0/{path(w)}"}


UNREACHABLE = "unreachable"  # a pattern no URL can match (DRF's detail route of a singleton)

EXPECT = {
    "catalog-list": {
        "GET": L(["catalog"]),
        "POST": W(body={"displayName": "Matrix catalog"}),
    },
    "catalog-detail": {
        "GET": R(pk="catalog"),
        "PATCH": W(body={"description": "changed"}, pk="catalog"),
        "DELETE": W(pk="catalog"),
    },
    "catalog-resource-list": {"GET": L(["resource"], catalog_id="catalog")},
    "catalog-resource-detail": {"GET": R(catalog_id="catalog", pk="resource")},
    "catalog-resource-role-list": {"GET": L(["member_role"], catalog_id="catalog")},
    "catalog-resource-role-detail": {"GET": R(catalog_id="catalog", pk="member_role")},
    "catalog-resource-scope-list": {"GET": L(["resource"], catalog_id="catalog")},
    "catalog-resource-scope-detail": {"GET": R(catalog_id="catalog", pk="resource")},
    "catalog-access-package-list": {"GET": L(["package"], catalog_id="catalog")},
    "catalog-access-package-detail": {"GET": R(catalog_id="catalog", pk="package")},
    "resource-request-list": {
        "POST": W(
            body=lambda w: {
                "requestType": "adminAdd",
                "catalog": {"id": str(w.objects["catalog"].pk)},
                "resource": {
                    "originId": str(w.objects["spare_group"].pk),
                    "originSystem": "AadGroup",
                },
            }
        ),
    },
    "access-package-list": {
        "GET": L(["package"]),
        "POST": W(
            body=lambda w: {
                "displayName": "Matrix package",
                "catalog": {"id": str(w.objects["catalog"].pk)},
            }
        ),
    },
    "access-package-filter-by-current-user": {"GET": R(NOBODY, on="=allowedRequestor")},
    "access-package-detail": {
        "GET": R(pk="package"),
        "PATCH": W(body={"description": "changed"}, pk="package"),
        "DELETE": W(pk="package"),
    },
    "access-package-role-scope-list": {
        "GET": L(["role_scope"], package_id="package"),
        "POST": W(
            body=lambda w: {
                "role": {
                    "originId": "Owner",
                    "originSystem": "AadGroup",
                    "resource": {"id": str(w.objects["resource"].pk)},
                },
                "scope": {"originId": str(w.objects["group"].pk), "originSystem": "AadGroup"},
            },
            package_id="package",
        ),
    },
    "access-package-role-scope-detail": {
        "GET": R(package_id="package", pk="role_scope"),
        "DELETE": W(package_id="package", pk="role_scope"),
    },
    "access-package-access-packages-incompatible-with": {"GET": R(pk="package")},
    "access-package-incompatible-access-packages": {"GET": R(pk="package")},
    "access-package-incompatible-groups": {"GET": R(pk="package")},
    "access-package-assignment-policies": {"GET": R(pk="package")},
    "access-package-incompatible-access-packages-ref": {
        "POST": W(
            body=_ref(lambda w: f"{EM[6:]}/accessPackages/{w.objects['open_package'].pk}"),
            pk="package",
        )
    },
    "access-package-incompatible-groups-ref": {
        "POST": W(body=_ref(lambda w: f"groups/{w.objects['spare_group'].pk}"), pk="package")
    },
    "access-package-incompatible-access-package-ref": {
        "DELETE": W(pk="package", other_id="open_package")
    },
    "access-package-incompatible-group-ref": {"DELETE": W(pk="package", group_id="group")},
    # a requester asks what a package's policies need of them: any signed-in person may
    "access-package-applicable-policy-requirements": {"POST": W(NOBODY, pk="package")},
    "assignmentpolicy-list": {
        "GET": L(["policy"]),
        "POST": W(
            body=lambda w: {
                "displayName": "Matrix policy",
                "accessPackage": {"id": str(w.objects["package"].pk)},
                "allowedTargetScope": "allMemberUsers",
                "expiration": {"type": "noExpiration"},
            }
        ),
    },
    "assignmentpolicy-detail": {
        "GET": R(pk="policy"),
        "PUT": W(
            body=lambda w: {
                "displayName": "Matrix policy",
                "accessPackage": {"id": str(w.objects["package"].pk)},
                "allowedTargetScope": "allMemberUsers",
                "expiration": {"type": "noExpiration"},
            },
            pk="policy",
        ),
        "DELETE": W(pk="policy"),
    },
    "assignment-request-list": {
        "GET": L(["request"], wrong={OUT, OTHER}),
        # a direct assignment: only the catalog's administrators may
        "POST": W(
            body=lambda w: {
                "requestType": "adminAdd",
                "assignment": {
                    "targetId": str(w.outsider.pk),
                    "assignmentPolicyId": str(w.objects["open_policy"].pk),
                    "accessPackageId": str(w.objects["open_package"].pk),
                },
            }
        ),
    },
    "assignment-request-filter-by-current-user": {"GET": R(NOBODY, on="=target")},
    "assignment-request-detail": {"GET": R({OUT, OTHER}, pk="request")},
    "assignment-request-cancel": {"POST": W({OUT, OTHER, READER, APPROVER}, pk="request")},
    "assignment-request-reprocess": {"POST": W({OUT, OTHER, READER, APPROVER}, pk="request")},
    # Only the custom extension resumes, by the Standard Webhooks signature made with its
    # secret: no token, not even the requestor's, is enough.
    "assignment-request-resume": {
        "POST": W(
            NO_ROLE | {READER, APPROVER},
            pk="request",
            body={
                "data": {
                    "@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
                    "stage": "assignmentRequestCreated",
                    "customExtensionStageInstanceId": "00000000-0000-0000-0000-000000000000",
                },
            },
        )
    },
    "assignment-list": {"GET": L(["assignment"])},
    "assignment-additional-access": {
        "GET": L(
            ["assignment"],
            access_package_id="open_package",
            incompatible_access_package_id="package",
        )
    },
    "assignment-filter-by-current-user": {"GET": R(NOBODY, on="=target")},
    "assignment-detail": {"GET": R(pk="assignment")},
    "assignment-reprocess": {"POST": W(pk="assignment")},
    "approval-list": {"GET": L(["request"], wrong={OUT, OTHER})},
    "approval-filter-by-current-user": {"GET": R(NOBODY, on="=approver")},
    "approval-detail": {"GET": R({OUT, OTHER}, pk="request")},
    "approval-stage-list": {"GET": L(["stage"], wrong={OUT, OTHER}, approval_id="request")},
    "approval-stage-detail": {
        "GET": R({OUT, OTHER}, approval_id="request", pk="stage"),
        # nobody approves their own request; a reader or another catalog's owner is no approver
        "PATCH": W(
            {OUT, OTHER, REQ, READER},
            body={"reviewResult": "Approve", "justification": "Matrix"},
            approval_id="request",
            pk="stage",
        ),
    },
    "connectedorganization-list": {
        "GET": L([], wrong=NOBODY),
        "POST": W(
            body={
                "displayName": "Matrix partner",
                "identitySources": [
                    {
                        "@odata.type": "#microsoft.graph.domainIdentitySource",
                        "domainName": "matrix.example",
                        "displayName": "matrix.example",
                    }
                ],
            }
        ),
    },
    "connectedorganization-detail": {
        "GET": R(NOBODY, pk="organisation"),
        "PATCH": W(body={"description": "changed"}, pk="organisation"),
        "DELETE": W(pk="organisation"),
    },
    "connectedorganization-internal-sponsors": {"GET": R(NOBODY, pk="organisation")},
    "connectedorganization-external-sponsors": {"GET": R(NOBODY, pk="organisation")},
    "connectedorganization-internal-sponsor-add": {
        "POST": W(body=_ref(lambda w: f"users/{w.outsider.pk}"), pk="organisation")
    },
    "connectedorganization-external-sponsor-add": {
        "POST": W(body=_ref(lambda w: f"users/{w.outsider.pk}"), pk="organisation")
    },
    "connectedorganization-internal-sponsor-remove": {
        "DELETE": W(pk="organisation", sponsor_id="manager")
    },
    "connectedorganization-external-sponsor-remove": {
        "DELETE": W(pk="organisation", sponsor_id="manager")
    },
    # the product's settings: read by anyone administering a catalog, changed by its admins
    "entitlementmanagementsettings-settings": {
        "GET": R({OUT, REQ}),
        "PATCH": W(body={"externalUserLifecycleAction": "none"}),
    },
    # access reviews: a definition is a policy's review settings, an instance one run of it
    "review-definition-list": {"GET": L(["open_policy"])},
    "review-definition-filter-by-current-user": {"GET": R(NOBODY, on="=reviewer")},
    "review-definition-detail": {"GET": R(pk="open_policy")},
    "review-instance-list": {"GET": L(["review"], definition_id="open_policy")},
    "review-instance-filter-by-current-user": {
        "GET": R(NOBODY, definition_id="open_policy", on="=reviewer")
    },
    "review-instance-detail": {"GET": R(definition_id="open_policy", pk="review")},
    "review-instance-accept-recommendations": {
        "POST": W(NOT_WRITERS, definition_id="open_policy", pk="review")
    },
    "review-instance-stop": {"POST": W(NOT_WRITERS, definition_id="open_policy", pk="review")},
    "review-instance-apply-decisions": {
        "POST": W(NOT_WRITERS, definition_id="open_policy", pk="review")
    },
    "review-decision-list": {"GET": L(["item"], definition_id="open_policy", instance_id="review")},
    "review-decision-filter-by-current-user": {
        "GET": R(NOBODY, definition_id="open_policy", instance_id="review", on="=reviewer")
    },
    "review-decision-detail": {
        "GET": R(definition_id="open_policy", instance_id="review", pk="item"),
        "PATCH": W(
            body={"decision": "Approve", "justification": "Matrix"},
            definition_id="open_policy",
            instance_id="review",
            pk="item",
        ),
    },
    # the directory: any person may read it (User.Read.All, as in Graph); applications only
    # with a directory permission
    "user-list": {"GET": L([], wrong=NOBODY)},
    "user-detail": {"GET": R(NOBODY, pk="requester")},
    "user-manager": {"GET": R(NOBODY, pk="requester")},
    "group-list": {"GET": L([], wrong=NOBODY)},
    "group-detail": {"GET": R(NOBODY, pk="group")},
    "group-members": {"GET": R(NOBODY, pk="group")},
    "me-list": {"GET": R(NOBODY)},
    "me-detail": UNREACHABLE,
}


# --------------------------------------------------------------------------------------
# The URL conf
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    regex: str
    view: type
    actions: tuple  # ((METHOD, action), ...)


def api_routes():
    """Every DRF view under /v1.0/ with the methods it answers."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern

    routes = []
    for regex, pattern in walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "cls", None)
        if not regex.startswith("v1.0") or view is None or pattern.name == "api-metadata":
            continue
        actions = getattr(pattern.callback, "actions", None) or {
            m: m for m in view.http_method_names if hasattr(view, m) and m != "options"
        }
        routes.append(
            Route(
                pattern.name,
                regex,
                view,
                tuple((m.upper(), a) for m, a in actions.items() if m not in ("options", "head")),
            )
        )
    return routes


def accepted(view, method, action):
    """The permissions the view accepts for this call (api.permissions.needed)."""
    by_action = getattr(view, "action_permissions", {})
    if action in by_action:
        return set(by_action[action])
    if method in drf_permissions.SAFE_METHODS:
        return set(getattr(view, "read_permissions", ()))
    return set(getattr(view, "write_permissions", ()))


def url_for(route, ids):
    """The route's regex with its groups filled in: ``^catalogs/(?P<pk>...)$`` → a path."""
    path = re.sub(r"(?<!\\)\$", "", route.regex.replace("^", ""))

    def group(match):
        return ids[match.group(1)]

    path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", group, path)
    path = path.replace("\\(", "(").replace("\\)", ")").replace("\\$", "$").replace("\\.", ".")
    return "/" + path


def test_every_api_route_has_an_entry_in_the_expectations_table():
    missing = []
    for route in api_routes():
        rules = EXPECT.get(route.name)
        if rules == UNREACHABLE:
            continue
        for method, _action in route.actions:
            if rules is None or method not in rules:
                missing.append(f"{route.name} {method} ({route.regex})")
    assert not missing, "Routes without an entry in EXPECT (say who may not call them):\n" + (
        "\n".join(missing)
    )
    served = {(route.name, method) for route in api_routes() for method, _ in route.actions}
    listed = {
        (name, method) for name, rules in EXPECT.items() if rules != UNREACHABLE for method in rules
    }
    assert not listed - served, f"EXPECT names calls no route answers: {listed - served}"


# --------------------------------------------------------------------------------------
# Snapshots of the database
# --------------------------------------------------------------------------------------

GOVERNED_APPS = ("directory", "entitlements", "approvals", "reviews", "notifications")


def _tables():
    return sorted(
        model._meta.db_table
        for app in GOVERNED_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
        if not model._meta.proxy
    )


def snapshot():
    """One value per governed table: a checksum of all its rows (PostgreSQL) or its count."""
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        parts = [
            f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {quote(table)} t)"
            for table in _tables()
        ]
    else:
        parts = [f"(SELECT COUNT(*) FROM {quote(table)})" for table in _tables()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        return dict(zip(_tables(), cursor.fetchone(), strict=True))


# --------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------


class Callers:
    """Tokens of the wrong callers, made once each."""

    def __init__(self, world):
        self.world = world
        self._people = {}
        self._apps = {}

    def person(self, name):
        if name not in self._people:
            self._people[name] = issue_user_token(getattr(self.world, name), DELEGATED_PERMISSIONS)
        return self._people[name]

    def application(self, permissions):
        key = frozenset(permissions)
        if key not in self._apps:
            application, _, _ = make_app(sorted(key), display_name=f"Matrix {len(self._apps)}")
            self._apps[key] = issue_app_token(application)
        return self._apps[key]


def _value(world, spec):
    if spec.startswith("="):
        return spec[1:]  # a literal, e.g. on='target'
    if spec in world.objects:
        return str(world.objects[spec].pk)
    if hasattr(world, spec):
        return str(getattr(world, spec).pk)
    raise KeyError(f"The test organisation has no {spec!r}.")


def _wrong_callers(route, method, action, rule, callers):
    yield "anonymous", None
    for name in sorted(rule.wrong):
        yield name, callers.person(name)
    needs = accepted(route.view, method, action)
    without = set(APPLICATION_PERMISSIONS) - needs
    if without:
        yield "application without the permission", callers.application(without)
    read_only = set(READ_ONLY) - needs
    if method not in drf_permissions.SAFE_METHODS and read_only and read_only != without:
        yield "application with read permissions only", callers.application(read_only)


def test_the_wrong_caller_is_refused_on_every_route_and_changes_nothing(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        world = build_world()
    callers = Callers(world)
    client = ApiClient()
    problems = []
    calls = 0
    for route in api_routes():
        rules = EXPECT.get(route.name)
        if rules in (None, UNREACHABLE):
            continue  # the table test reports it
        for method, action in route.actions:
            rule = rules[method]
            ids = {name: _value(world, spec) for name, spec in rule.ids.items()}
            path = url_for(route, ids)
            body = rule.body(world) if callable(rule.body) else rule.body
            for who, token in list(_wrong_callers(route, method, action, rule, callers)):
                before = snapshot()
                client.token = token
                with django_capture_on_commit_callbacks(execute=True):
                    response = client.generic(method, path, body if body is not None else "")
                calls += 1
                problem = _judge(response, rule, world)
                changed = [t for t, v in snapshot().items() if before[t] != v]
                if changed:
                    problem = (problem or "") + f" changed {', '.join(changed)}"
                if problem:
                    problems.append(f"{method} {path} as {who}: {problem}")
    assert calls > 100
    assert not problems, f"{len(problems)} of {calls} wrong calls:\n" + "\n".join(problems)


def _judge(response, rule, world):
    status = response.status_code
    if status in (401, 403, 404, 405):  # 405: the view refuses the method to everyone
        if response["Content-Type"].startswith("application/json") and "error" in response.json():
            return None
        return f"{status} without Graph's error body"
    if status == 200 and rule.hidden:
        text = response.content.decode()
        shown = [name for name in rule.hidden if str(world.objects[name].pk) in text]
        return f"200 showing {', '.join(shown)}" if shown else None
    return f"answered {status}: {response.content[:200]!r}"
