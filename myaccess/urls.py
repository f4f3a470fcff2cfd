from django.urls import path

from .views import approvals, assignments, delegation, home, language, packages, requests

app_name = "myaccess"

urlpatterns = [
    path("", home.home, name="home"),
    path("access-packages/", packages.package_list, name="packages"),
    path(
        "access-packages/active/",
        packages.assignment_list,
        {"which": "active"},
        name="active_assignments",
    ),
    path(
        "access-packages/expired/",
        packages.assignment_list,
        {"which": "expired"},
        name="expired_assignments",
    ),
    path("access-packages/<str:pk>/", packages.package_detail, name="package"),
    path("access-packages/<str:pk>/request/", packages.request_create, name="request_create"),
    path("assignments/<str:pk>/extend/", assignments.assignment_extend, name="assignment_extend"),
    path(
        "assignments/<str:pk>/remove/", assignments.assignment_remove_view, name="assignment_remove"
    ),
    path("requests/", requests.request_list, name="requests"),
    path("requests/<str:pk>/", requests.request_detail, name="request_detail"),
    path("requests/<str:pk>/submitted/", requests.request_submitted, name="request_submitted"),
    path("requests/<str:pk>/cancel/", requests.request_cancel_view, name="request_cancel"),
    path("approvals/", approvals.approval_list, name="approvals"),
    path("approvals/history/", approvals.approval_history, name="approval_history"),
    path("approvals/bulk/", approvals.approval_bulk, name="approval_bulk"),
    path("approvals/delegation/", delegation.delegation_list, name="approval_delegation"),
    path(
        "approvals/delegation/<str:pk>/end/",
        delegation.delegation_end_view,
        name="approval_delegation_end",
    ),
    path(
        "approvals/history/<str:pk>/revoke/",
        delegation.approval_revoke_view,
        name="approval_revoke",
    ),
    path("approvals/<str:pk>/", approvals.approval_detail, name="approval_detail"),
    path("language/", language.language_set, name="language"),
]
