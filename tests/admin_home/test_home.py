"""The admin home: the product's objects in the sections an administrator thinks in."""

import re

import pytest
from django.urls import reverse

from entitlements.models import AdminRole
from tests.factories import CatalogFactory, UserFactory
from tests.foundation.admin_support import give_role

pytestmark = pytest.mark.django_db

SECTIONS = [
    "Catalogs and packages",
    "Requests and assignments",
    "Access reviews",
    "Directory",
    "Connected systems",
    "Audit and reports",
    "System",
]


def _sections(html):
    """{section name: [model names]} in the order the page shows them."""
    found = {}
    for block in re.findall(r'<div class="app-\w+ module section-module.*?</table>', html, re.S):
        name = re.search(r'<span class="section">(.*?)</span>', block).group(1)
        found[name] = re.findall(r'<th scope="row"[^>]*>\s*<a [^>]*>(.*?)</a>', block)
    return found


def test_the_home_shows_the_sections_in_the_order_an_administrator_thinks(client, admin_user):
    client.force_login(admin_user)

    sections = _sections(client.get(reverse("admin:index")).content.decode())

    assert list(sections) == SECTIONS
    assert sections["Catalogs and packages"][:4] == [
        "Catalogs",
        "Resources",
        "Resource roles",
        "Access packages",
    ]
    assert sections["Requests and assignments"][0] == "Assignment requests"
    assert "Users" in sections["Directory"] and "Groups" in sections["Directory"]
    assert "Connected systems" in sections["Connected systems"]
    assert "Audit events" in sections["Audit and reports"]


def test_framework_internals_are_under_system_with_names_that_do_not_repeat_the_products(
    client, admin_user
):
    client.force_login(admin_user)

    sections = _sections(client.get(reverse("admin:index")).content.decode())

    system = sections["System"]
    for internal in ("Crontabs", "Solar events", "Social accounts", "Periodic tasks"):
        assert internal in system
        assert all(internal not in models for name, models in sections.items() if name != "System")
    assert "Permission groups (Django)" in system
    assert "Groups" not in system
    names = [model for models in sections.values() for model in models]
    assert names.count("Groups") == 1


def test_a_catalog_owner_sees_only_what_the_role_opens_and_no_system_section(client):
    owner = UserFactory(is_staff=False)
    give_role(owner, AdminRole.CATALOG_OWNER, CatalogFactory())
    client.force_login(owner)

    sections = _sections(client.get(reverse("admin:index")).content.decode())

    assert "Access packages" in sections["Catalogs and packages"]
    assert "System" not in sections
    assert "Connected systems" not in sections


def test_the_sidebar_of_a_change_list_uses_the_same_sections_and_marks_the_current_one(
    client, admin_user
):
    client.force_login(admin_user)

    html = client.get(reverse("admin:entitlements_accesspackage_changelist")).content.decode()

    sidebar = html[html.index('id="nav-sidebar"') :]
    assert list(_sections(sidebar)) == SECTIONS
    assert 'class="app-catalogs module section-module current-app"' in sidebar
    assert 'class="app-system module section-module"' in sidebar


def test_an_apps_own_page_still_lists_that_apps_models(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("admin:app_list", args=["entitlements"]))

    assert response.status_code == 200
    assert [app["app_label"] for app in response.context["app_list"]] == ["entitlements"]


def test_the_home_page_costs_a_bounded_number_of_queries(
    client, admin_user, django_assert_max_num_queries
):
    client.force_login(admin_user)

    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:index")).status_code == 200
