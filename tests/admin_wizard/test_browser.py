"""The guided "New access package" flow in a real browser (Debian's Chromium), end to end, then
a second policy added to the package by the same flow (screenshots: artifacts/screenshots)."""

from datetime import timedelta

import pytest

from entitlements.models import AccessPackage, AssignmentPolicy
from tests.browser import screenshot, sign_in
from tests.factories import GroupFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def shot(page, name):
    screenshot(page, f"wizard-{name}")


def pick(page, row, name):
    """Choose ``name`` in the admin's autocomplete box of the form row ``row``."""
    page.locator(f"{row} .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(name.split()[0])
    page.locator(".select2-results__option", has_text=name).click()


def test_an_owner_builds_a_package_with_a_policy_a_stage_a_question_and_reviews(
    page, catalog, catalog_owner, approver, reports_group, ledger_group
):
    UserFactory(email="rev@example.com", display_name="Rhea Reviewer")
    sign_in(page, catalog_owner, "/admin/entitlements/accesspackage/")
    page.get_by_role("link", name="New access package (guided)").click()

    # Basics: a mistake first, shown on the field.
    page.wait_for_url("**step=basics")
    page.get_by_role("button", name="Next").click()
    assert page.locator(".field-display_name .errorlist").inner_text() == (
        "This field is required."
    )
    page.get_by_label("Name").fill("Finance reporting")
    page.get_by_label("Description").fill("Read the monthly finance reports.")
    page.get_by_label("Catalog").select_option(label="Finance")
    shot(page, "1-basics")
    page.get_by_role("button", name="Next").click()

    # Resource roles: the search narrows the list to what it shows.
    page.wait_for_url("**step=roles")
    page.get_by_label("Search", exact=True).fill("member finance")
    page.get_by_role("button", name="Search").click()
    roles = page.locator("#wizard-roles li")
    assert [text.strip() for text in roles.all_inner_texts()] == [
        "Member of Finance reports (Group)"
    ]
    page.get_by_label("Member of Finance reports (Group)").check()
    shot(page, "2-resource-roles")
    page.get_by_role("button", name="Next").click()

    # Requests: all members, one stage decided by Arno within a week.
    page.wait_for_url("**step=requests")
    page.get_by_label("Policy name").fill("Employees")
    page.get_by_label("Who may request:", exact=True).select_option("allMemberUsers")
    stage = "#stage-1"
    page.locator(f"{stage} .field-duration_before_automatic_denial input").fill("1 week")
    pick(page, f"{stage} .field-users", "Arno Approver")
    shot(page, "3-requests")
    page.get_by_role("button", name="Next").click()

    # Requestor information: one question.
    page.wait_for_url("**step=questions")
    page.locator("[name=questions-0-text]").fill("Which cost centre do you work for?")
    page.get_by_role("button", name="Next").click()

    # Lifecycle: 90 days, quarterly reviews by the manager with a fallback.
    page.wait_for_url("**step=lifecycle")
    page.get_by_label("Access lasts").fill("90 days")
    page.get_by_label("Access reviews", exact=True).check()
    page.get_by_label("First review on").fill("2027-01-04")
    page.get_by_label("Each person's manager reviews").check()
    page.get_by_role("button", name="Next").click()
    # The services' own check: a manager may not exist, so a fallback reviewer is needed.
    assert "there is no fallback reviewer" in page.locator("#content-main").inner_text()
    pick(page, ".field-fallback_reviewers", "Rhea Reviewer")
    shot(page, "5-lifecycle")
    page.get_by_role("button", name="Next").click()

    # Review + create: everything in words; nothing saved yet.
    page.wait_for_url("**step=review")
    words = page.locator("#my-access-words").inner_text()
    assert "Gives you: Member of Finance reports" in words
    assert "Approved by Arno Approver, who has 7 days to decide." in words
    assert "Access lasts 90 days." in words
    summary = page.locator("#wizard-summary").inner_text()
    assert "Which cost centre do you work for? (text, " in summary
    assert "; required)" in summary
    assert "Reviewed quarterly" in summary
    assert not AccessPackage.objects.exists()
    shot(page, "6-review")
    page.get_by_role("button", name="Create").click()

    page.wait_for_selector(".messagelist .success")
    assert "was created with its policy “Employees”" in page.locator(".messagelist").inner_text()
    package = AccessPackage.objects.get()
    policy = AssignmentPolicy.objects.get(access_package=package)
    assert policy.expiration_duration == timedelta(days=90)
    assert policy.approval_stages.get().duration_before_automatic_denial == timedelta(days=7)
    shot(page, "7-created")

    # The same flow adds a second policy to the package.
    GroupFactory(display_name="Contractors")
    page.get_by_role("link", name="Add a policy (guided)").click()
    page.wait_for_url("**step=requests")
    page.get_by_label("Policy name").fill("Contractors")
    page.get_by_label("Who may request:", exact=True).select_option("specificDirectoryUsers")
    pick(page, "#who-may-request .field-groups", "Contractors")
    page.get_by_label("Approval required", exact=True).uncheck()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=lifecycle")
    page.get_by_label("Access ends:", exact=True).select_option("noExpiration")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=review")
    assert (
        "Specific users and groups: Members of Contractors."
        in page.locator("#wizard-summary").inner_text()
    )
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector(".messagelist .success")
    assert set(package.assignment_policies.values_list("display_name", flat=True)) == {
        "Employees",
        "Contractors",
    }


@pytest.fixture
def page_without_javascript(open_page):
    return open_page(javascript=False)


def test_the_flow_works_in_a_browser_without_javascript(
    page_without_javascript, catalog, catalog_owner, approver, reports_group
):
    page = page_without_javascript
    sign_in(
        page, catalog_owner, "/admin/entitlements/accesspackage/guided/", arrive="**step=basics"
    )
    page.get_by_label("Name").fill("Ledger access")
    page.get_by_label("Catalog").select_option(label="Finance")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=roles")
    page.get_by_label("Owner of Finance reports (Group)").check()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=requests")
    page.locator("#stage-1 [name=stage1-users_emails]").fill(approver.email)
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=questions")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=lifecycle")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**step=review")
    assert "Approved by Arno Approver" in page.locator("#my-access-words").inner_text()
    shot(page, "nojs-review")
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector(".messagelist .success")
    package = AccessPackage.objects.get(display_name="Ledger access")
    assert package.resource_role_scopes.get().role.display_name == "Owner"
