"""The admin site: opened to the people who hold the product's admin roles, its home page
grouped the way an administrator thinks, durations typed and shown in words."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from entitlements import permissions

from .durations import use_human_durations

# The home page's sections, in order, and the models each lists first (in that order). A
# model named nowhere goes to its app's section (APP_SECTIONS), else under System.
SECTIONS = [
    (
        "catalogs",
        _("Catalogs and packages"),
        [
            "entitlements.catalog",
            "entitlements.resource",
            "entitlements.resourcerole",
            "entitlements.accesspackage",
            "entitlements.assignmentpolicy",
            "entitlements.approvalstage",
            "entitlements.question",
            "entitlements.roleassignment",
        ],
    ),
    (
        "requests",
        _("Requests and assignments"),
        [
            "entitlements.assignmentrequest",
            "approvals.requestapprovalstage",
            "entitlements.assignment",
            "entitlements.assignmentresourcerole",
        ],
    ),
    ("reviews", _("Access reviews"), ["reviews.reviewinstance", "reviews.reviewitem"]),
    (
        "directory",
        _("Directory"),
        [
            "directory.user",
            "directory.group",
            "directory.connectedorganization",
            "identity.guestlifecycle",
            "directory.entitlementmanagementsettings",
            "identity.directoryimport",
            "directory.application",
            "directory.site",
        ],
    ),
    (
        "systems",
        _("Connected systems"),
        [
            "entitlements.connectedsystem",
            "entitlements.driftreport",
            "scim.provisioningclient",
            "api.application",
            "api.clientsecret",
            "api.accesstoken",
        ],
    ),
    ("audit", _("Audit and reports"), ["entitlements.auditevent", "notifications.notification"]),
    ("system", _("System"), ["auth.group", "sites.site"]),
]
APP_SECTIONS = {
    "entitlements": "catalogs",
    "approvals": "requests",
    "reviews": "reviews",
    "extensions": "catalogs",  # a catalog's custom extensions and their callouts
    "directory": "directory",
    "identity": "directory",
    "scim": "systems",
    "api": "systems",
    "notifications": "audit",
    "reports": "audit",
}
# Framework models whose names repeat a product model's ("Groups", "Sites").
RENAMED = {
    "auth.group": _("Permission groups (Django)"),
    "sites.site": _("Site domains (Django)"),
}


def open_admin_to_role_holders(site):
    """Let staff and anyone holding an admin role (direct or delivered) enter ``site``.

    What each person then sees is decided per model by ``entitlements.permissions``.
    """
    site.has_permission = lambda request: permissions.may_enter_admin(request.user)
    site.login = _through_product_sign_in(site.login)


def _through_product_sign_in(admin_login):
    """Send admin sign-in through the product's own, so that two-factor authentication and
    sign-in rate limits apply there too; a signed-in person without a role gets a 403."""

    @wraps(admin_login)
    def login(request, extra_context=None):
        if request.user.is_authenticated:
            if not permissions.may_enter_admin(request.user):
                raise PermissionDenied
            return admin_login(request, extra_context)
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("admin:index")
        return redirect(f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: target})}")

    return login


# Pages that are not a model's (reports, the dashboard), added by their apps: see add_home_link.
_HOME_LINKS = []


def add_home_link(*, section, name, url_name, may_see):
    """List the page ``url_name`` as ``name`` in ``section`` of the admin home and sidebar, for
    the people ``may_see(request)`` lets in. Apps above entitlements call it from ``ready()``."""
    if section not in {key for key, _name, _keys in SECTIONS}:
        raise ValueError(f"unknown admin home section {section!r}")
    _HOME_LINKS.append((section, name, url_name, may_see))


def _links(request):
    for section, name, url_name, may_see in _HOME_LINKS:
        if may_see(request):
            url = reverse(url_name)
            yield (
                section,
                {
                    "name": name,
                    "object_name": url_name.rsplit(":", 1)[-1],
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                },
            )


def arrange_admin_site(site):
    """The product's admin home (sections) and durations in words, on ``site``."""
    site.get_app_list = _sectioned(site)
    use_human_durations(site)


def _sectioned(site):
    """``get_app_list`` that groups the models into SECTIONS for the home page and the sidebar.

    Django's own list decides which models the person may see; only the grouping changes. An
    app's own page (``app_label`` given) keeps Django's list of that app's models.
    """
    by_apps = AdminSite.get_app_list.__get__(site)

    def get_app_list(request, app_label=None):
        apps = by_apps(request, app_label)
        if app_label is not None:
            return apps
        order = {
            key: (index, position)
            for index, (_section, _name, keys) in enumerate(SECTIONS)
            for position, key in enumerate(keys)
        }
        grouped = {section: [] for section, _name, _keys in SECTIONS}
        for app in apps:
            for model in app["models"]:
                key = f"{app['app_label']}.{model['object_name'].lower()}"
                section = SECTIONS[order[key][0]][0] if key in order else None
                section = section or APP_SECTIONS.get(app["app_label"], "system")
                if key in RENAMED:
                    model = {**model, "name": RENAMED[key]}
                rank = order[key][1] if key in order else len(order)
                grouped[section].append((rank, str(model["name"]).lower(), app, model))
        for section, link in _links(request):
            grouped[section].append(
                (len(order) + 1, str(link["name"]).lower(), {"app_label": section}, link)
            )
        sections = []
        for section, name, _keys in SECTIONS:
            if not grouped[section]:
                continue
            models = [
                {**model, "app_label": app["app_label"]}
                for _rank, _name, app, model in sorted(grouped[section], key=lambda r: r[:2])
            ]
            sections.append(
                {
                    "name": name,
                    "app_label": section,
                    "app_url": None,
                    "is_section": True,
                    "is_current": any(
                        m["admin_url"] and request.path.startswith(m["admin_url"]) for m in models
                    ),
                    "has_module_perms": True,
                    "models": models,
                }
            )
        return sections

    return get_app_list
