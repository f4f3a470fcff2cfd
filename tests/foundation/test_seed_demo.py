"""seed_demo: the demo organisation, and bulk data at tenant limits for benchmarks."""

from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.utils import timezone

from demo.generator import Generator, default_sizes
from demo.organisation import DEMO_PASSWORD, SIGN_INS
from directory.models import GrantSource, GroupMembership, User
from entitlements.models import (
    AccessPackage,
    AdminRole,
    Assignment,
    AssignmentPolicy,
    AssignmentResourceRole,
    Catalog,
    OriginSystem,
    Question,
    Resource,
    RoleAssignment,
)


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot():
    """Every row of the project's own tables, as (model, id, last modified)."""
    rows = set()
    for label in ("directory", "entitlements"):
        for model in apps.get_app_config(label).get_models():
            fields = ["pk", "modified"] if hasattr(model, "modified") else ["pk"]
            rows |= {(model.__name__, *row) for row in model.objects.values_list(*fields)}
    return rows


def package(name):
    return AccessPackage.objects.get(display_name=name)


def only_policy(name):
    return AssignmentPolicy.objects.get(access_package__display_name=name)


# --- The demo organisation ----------------------------------------------------------------


class TestTheDemoOrganisation(TestCase):
    """Seeded once for the class (the seed runs ~1,000 queries); each test is rolled back."""

    @classmethod
    def setUpTestData(cls):
        cls.output = seed()

    def test_a_second_run_changes_nothing_and_says_so(self):
        before = snapshot()

        output = seed()

        assert snapshot() == before
        assert "nothing changed" in output

    def test_every_listed_sign_in_works_with_the_one_demo_password(self):
        for email, name, _who in SIGN_INS:
            user = User.objects.get(email=email)
            assert user.display_name == name
            assert email in self.output
        assert DEMO_PASSWORD in self.output
        assert User.objects.get(email="employee@demo.example").check_password(DEMO_PASSWORD)

    def test_the_people_form_a_hierarchy_from_the_ceo_through_vps_to_department_heads(self):
        employee = User.objects.get(email="employee@demo.example")
        head, vp, ceo = (employee.manager_at_level(n) for n in (1, 2, 3))
        assert head.job_title == "Head of Engineering"
        assert vp.job_title == "VP Technology"
        assert ceo.job_title == "CEO" and ceo.manager is None
        departments = set(User.objects.exclude(department="").values_list("department", flat=True))
        assert {"Engineering", "Sales", "Finance", "HR", "Marketing"} <= departments

    def test_admin_owner_and_guest_have_their_roles(self):
        admin = User.objects.get(email="admin@demo.example")
        assert admin.is_superuser and admin.is_staff
        owner = User.objects.get(email="owner@demo.example")
        assert owner.is_staff and not owner.is_superuser
        assert RoleAssignment.objects.filter(
            principal=owner, role=AdminRole.CATALOG_OWNER, catalog__display_name="Engineering"
        ).exists()
        guest = User.objects.get(email=SIGN_INS[-1][0])
        assert guest.user_type == User.UserType.GUEST
        assert guest.connected_organization is not None
        assert guest.sponsors.exists()

    def test_approvers_come_from_a_security_group(self):
        stage_two = (
            only_policy("Production access").approval_stages.get(sequence=2).approver_sets.get()
        )
        assert stage_two.subject_type == "groupMembers"
        assert stage_two.group.memberships.filter(user__email="approver@demo.example").exists()

    def test_the_catalogs_hold_every_kind_of_resource(self):
        assert set(Catalog.objects.values_list("display_name", flat=True)) >= {
            "General",
            "Engineering",
            "Sales",
            "Finance",
            "Partners",
        }
        assert Catalog.objects.get(display_name="Partners").is_externally_visible
        kinds = set(Resource.objects.values_list("origin_system", flat=True))
        assert kinds == set(OriginSystem.values)
        wiki = Resource.objects.filter(display_name="Company Wiki").first()
        assert list(wiki.roles.values_list("display_name", flat=True)) == ["Default Access"]
        crm = Resource.objects.get(display_name="CRM")
        assert set(crm.roles.values_list("display_name", flat=True)) == {
            "Sales Rep",
            "Sales Manager",
        }

    def test_each_department_has_an_onboarding_package_its_people_already_hold(self):
        for department in ("Engineering", "Sales", "Finance", "HR", "Marketing"):
            onboarding = package(f"{department} onboarding")
            holders = Assignment.objects.filter(access_package=onboarding, state="delivered")
            assert holders.filter(target__department=department).exists()
        grant = AssignmentResourceRole.objects.filter(
            assignment__access_package__display_name="Sales onboarding",
            resource_role__resource__origin_system=OriginSystem.GROUP,
        ).first()
        assert grant.state == "delivered"
        assert GroupMembership.objects.filter(
            user=grant.target, group__display_name="Sales Team", source=GrantSource.ENTITLEMENT
        ).exists()

    def test_the_contractor_package_lasts_30_days_is_approved_by_sponsors_and_can_be_extended(self):
        policy = only_policy("Contractor access")
        assert policy.expiration_duration == timedelta(days=30)
        assert policy.enable_targets_to_self_update_access
        approvers = {
            (a.purpose, a.subject_type) for a in policy.approval_stages.get().approver_sets.all()
        }
        assert approvers == {
            ("primaryApprover", "targetUserSponsors"),
            ("fallbackPrimaryApprover", "singleUser"),
        }
        question = policy.questions.get()
        assert question.regex_pattern and question.question_type == Question.QuestionType.TEXT_INPUT

    def test_the_two_stage_package_asks_the_manager_then_the_approvers_group(self):
        stages = only_policy("Production access").approval_stages.order_by("sequence")
        first = {(a.purpose, a.subject_type) for a in stages[0].approver_sets.all()}
        assert first == {
            ("primaryApprover", "requestorManager"),
            ("fallbackPrimaryApprover", "singleUser"),
        }
        assert [a.subject_type for a in stages[1].approver_sets.all()] == ["groupMembers"]

    def test_the_compliance_package_is_reviewed_every_quarter(self):
        policy = only_policy("Compliance auditor")
        assert policy.review_is_enabled
        assert policy.review_recurrence == "quarterly"
        assert policy.review_start_date > timezone.now().date()

    def test_the_event_package_ends_on_a_date_in_the_future(self):
        policy = only_policy("Company summit")
        assert policy.expiration_type == "afterDateTime"
        assert policy.expiration_end_datetime > timezone.now()
        assert policy.questions.get().question_type == Question.QuestionType.MULTIPLE_CHOICE

    def test_the_partner_package_is_for_the_guests_connected_organization(self):
        policy = only_policy("Partner project collaboration")
        assert policy.access_package.catalog.is_externally_visible
        assert policy.allowed_target_scope == "specificConnectedOrganizationUsers"
        allowed = policy.subject_sets.get(purpose="allowedTarget")
        guest = User.objects.get(email=SIGN_INS[-1][0])
        assert allowed.connected_organization == guest.connected_organization

    def test_a_hidden_package_and_an_incompatible_pair_exist(self):
        assert package("Leadership offsite planning").is_hidden
        initiate, approve = package("Payment initiation"), package("Payment approval")
        assert list(initiate.incompatible_access_packages.all()) == [approve]
        assert list(approve.incompatible_access_packages.all()) == [initiate]


# --- Generated data ---------------------------------------------------------------------------


def generate(**sizes):
    return Generator(quiet=True).run(default_sizes(**sizes))


def generated(model, **filters):
    lookups = {
        User: {"email__startswith": "gen-"},
        AccessPackage: {"display_name__startswith": "gen-"},
        Assignment: {"access_package__display_name__startswith": "gen-"},
    }
    return model.objects.filter(**lookups[model], **filters)


@pytest.mark.django_db
def test_the_command_generates_the_sizes_asked_and_a_second_run_adds_nothing():
    sizes = ("--users", "50", "--packages", "10", "--assignments", "100")
    seed(*sizes)
    before = snapshot()

    output = seed(*sizes)

    assert snapshot() == before
    assert "Generated data already in place" in output and "nothing changed" in output
    assert generated(User).count() == 50
    assert generated(AccessPackage).count() == 10
    assert generated(Assignment, state="delivered").count() == 100


@pytest.mark.django_db
def test_generated_assignments_are_delivered_with_their_grants_and_memberships():
    generate(users=50, packages=10, assignments=100)

    assignments = generated(Assignment)
    pairs = set(assignments.values_list("target_id", "access_package_id"))
    assert len(pairs) == 100
    grants = AssignmentResourceRole.objects.filter(assignment__in=assignments)
    assert grants.count() == 100 and set(grants.values_list("state", flat=True)) == {"delivered"}
    for grant in grants.select_related("resource_role__resource")[:10]:
        assert GroupMembership.objects.filter(
            user_id=grant.target_id,
            group_id=grant.resource_role.resource.group_id,
            source=GrantSource.ENTITLEMENT,
        ).exists()


@pytest.mark.django_db
def test_each_generated_package_has_one_open_policy_and_one_group_role():
    generate(packages=10, catalogs=3, groups=4)

    for pkg in generated(AccessPackage):
        policy = pkg.assignment_policies.get()
        assert policy.allowed_target_scope == "allMemberUsers"
        assert not policy.is_approval_required_for_add
        assert policy.expiration_duration == timedelta(days=365)
        scope = pkg.resource_role_scopes.get()
        assert scope.role.resource.origin_system == OriginSystem.GROUP
        assert scope.role.resource.catalog_id == pkg.catalog_id


@pytest.mark.django_db
def test_generated_people_form_one_management_tree():
    generate(users=50)

    people = generated(User)
    assert people.filter(manager__isnull=True).count() == 1
    assert not people.exclude(manager__isnull=True).exclude(manager__in=people).exists()
    assert people.exclude(department="").count() == 50


@pytest.mark.django_db
def test_larger_sizes_add_only_the_difference():
    generate(users=20, packages=4, assignments=30)
    first_ids = set(generated(Assignment).values_list("pk", flat=True))

    generate(users=30, packages=4, assignments=60)

    assert generated(User).count() == 30
    assert first_ids < set(generated(Assignment).values_list("pk", flat=True))
    assert generated(Assignment).count() == 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--users", "-5"), "whole number"),
        (("--users", "many"), "whole number"),
        (("--users", "2", "--packages", "2", "--assignments", "5"), "at most 4"),
        (("--packages", "3", "--groups", "0"), "at least one group"),
    ],
)
def test_bad_sizes_are_refused_before_anything_is_written(args, message):
    with pytest.raises(CommandError, match=message):
        seed(*args)
    assert not User.objects.exists()
