"""The demo organisation: people, catalogs, resources and access packages to try the product on.

``seed_organisation()`` builds it and can run any number of times: every object is looked
up by its natural name first, so a second run finds everything in place and changes
nothing. All demo people sign in with ``DEMO_PASSWORD``.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from directory.models import (
    Application,
    AppRole,
    AppRoleAssignment,
    ConnectedOrganization,
    GrantSource,
    Group,
    GroupMembership,
    Site,
    SiteRoleAssignment,
    User,
)
from entitlements.configuration import resource_add, resource_origin_id
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    AdminRole,
    AllowedTargetScope,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AssignmentResourceRole,
    AssignmentState,
    Catalog,
    ExpirationType,
    GrantState,
    OriginSystem,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    Resource,
    ResourceRoleScope,
    ReviewRecurrence,
    RoleAssignment,
    StageApproverSet,
    SubjectType,
)

DEMO_PASSWORD = "demo-password-123"
DEMO_DOMAIN = "demo.example"
COMPANY = "Larkspur Ltd"
PARTNER = "Harbor Partners"
PARTNER_DOMAIN = "harbor-partners.example"

# The people worth signing in as, in the order the sign-in block lists them.
SIGN_INS = [
    ("admin@demo.example", "Ada Admin", "administrator: everything, including the admin site"),
    ("owner@demo.example", "Olga Owner", "owner of the Engineering catalog (admin site)"),
    ("approver@demo.example", "Arno Approver", "approver; member of Access Approvers"),
    ("manager@demo.example", "Erin Engel", "Head of Engineering: approves her team's requests"),
    ("employee@demo.example", "Emma Evans", "software engineer: requests access in My Access"),
    ("contractor@demo.example", "Carl Contractor", "contractor sponsored by Erin Engel"),
    (f"guest@{PARTNER_DOMAIN}", "Gina Guest", f"guest from {PARTNER}, sponsored by Sam Sato"),
]

Role = GroupMembership.Role
# Departments whose onboarding package an automatic policy gives, by a rule on the department.
AUTOMATIC_ONBOARDING = ("Sales", "Engineering")


@dataclass
class SeedResult:
    """What a run of ``seed_organisation`` did, per kind of object."""

    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)

    @property
    def changed(self):
        return bool(self.created or self.updated)

    def summary(self):
        if not self.changed:
            return "Demo organisation already in place: nothing changed."
        parts = []
        for label, counter in (("created", self.created), ("updated", self.updated)):
            if counter:
                items = ", ".join(f"{n} {kind}" for kind, n in sorted(counter.items()))
                parts.append(f"{label} {items}")
        return "Demo organisation: " + "; ".join(parts) + "."


class _Seeder:
    """Looks objects up by natural key, creates what is missing, fixes what differs."""

    def __init__(self, now):
        self.now = now
        self.result = SeedResult()
        self._password_hash = None
        self._created = set()

    @property
    def password_hash(self):
        # Hashing is deliberately slow; every demo person shares this one hash.
        if self._password_hash is None:
            self._password_hash = make_password(DEMO_PASSWORD)
        return self._password_hash

    def ensure(self, model, lookup, values=None, create_only=None):
        """The object matching ``lookup``, with ``values`` set; ``create_only`` on creation."""
        values = values or {}
        obj = model._default_manager.filter(**lookup).first()
        if obj is None:
            obj = model._default_manager.create(**lookup, **values, **(create_only or {}))
            self.result.created[str(model._meta.verbose_name_plural)] += 1
            self._created.add(obj.pk)
            return obj
        changed = []
        for name, value in values.items():
            field_ = model._meta.get_field(name)
            if field_.many_to_one:
                current, wanted = getattr(obj, field_.attname), value.pk if value else None
            else:
                current, wanted = getattr(obj, name), value
            if current != wanted:
                setattr(obj, name, value)
                changed.append(name)
        if changed:
            obj.save(update_fields=[*changed, "modified"])
            self.result.updated[str(model._meta.verbose_name_plural)] += 1
        return obj

    def ensure_related(self, obj, attr, others):
        """Add the missing ``others`` to the many-to-many ``attr`` of ``obj``."""
        manager = getattr(obj, attr)
        present = set(manager.values_list("pk", flat=True))
        missing = [o for o in others if o.pk not in present]
        if missing:
            manager.add(*missing)
            if obj.pk not in self._created:
                self.result.updated[str(obj._meta.verbose_name_plural)] += 1

    def person(self, email, display_name, *, department, job_title, manager=None, **extra):
        return self.ensure(
            User,
            {"email": email},
            {
                "display_name": display_name,
                "department": department,
                "job_title": job_title,
                "manager": manager,
                "company_name": extra.pop("company_name", COMPANY),
                **extra,
            },
            create_only={"password": self.password_hash},
        )

    def member(self, group, user, role=Role.MEMBER):
        return self.ensure(
            GroupMembership,
            {"group": group, "user": user, "role": role},
            create_only={"source": GrantSource.DIRECT},
        )

    def resource(self, catalog, origin_system, **kwargs):
        """Add a group, application, site or directory role to a catalog (once)."""
        probe = Resource(catalog=catalog, origin_system=origin_system, **kwargs)
        exists = Resource.objects.filter(
            catalog=catalog, origin_system=origin_system, origin_id=resource_origin_id(probe)
        ).exists()
        # The seed runs as the system (actor None), which may add any directory object.
        resource = resource_add(actor=None, catalog=catalog, origin_system=origin_system, **kwargs)
        if not exists:
            self.result.created["resources"] += 1
        return resource

    def package(self, catalog, name, description, roles, *, is_hidden=False):
        package = self.ensure(
            AccessPackage,
            {"catalog": catalog, "display_name": name},
            {"description": description, "is_hidden": is_hidden},
        )
        for role in roles:
            self.ensure(ResourceRoleScope, {"access_package": package, "role": role})
        return package

    def policy(self, package, name, **values):
        create_only = {
            key: values.pop(key)
            for key in ("expiration_end_datetime", "review_start_date")
            if key in values
        }
        values.setdefault("is_approval_required_for_add", False)
        values.setdefault("is_requestor_justification_required", False)
        return self.ensure(
            AssignmentPolicy,
            {"access_package": package, "display_name": name},
            values,
            create_only=create_only,
        )

    def stage(self, policy, sequence, *approvers, days=14, escalate_after=None, **values):
        """An approval stage; ``approvers`` are (purpose, subject_type, {user|group: ...})."""
        stage = self.ensure(
            ApprovalStage,
            {"policy": policy, "sequence": sequence},
            {
                "duration_before_automatic_denial": timedelta(days=days),
                "is_escalation_enabled": escalate_after is not None,
                "duration_before_escalation": escalate_after,
                **values,
            },
        )
        for purpose, subject_type, subject in approvers:
            self.ensure(
                StageApproverSet,
                {"stage": stage, "purpose": purpose, "subject_type": subject_type, **subject},
            )
        return stage

    def subject(self, policy, purpose, subject_type, **subject):
        return self.ensure(
            PolicySubjectSet,
            {"policy": policy, "purpose": purpose, "subject_type": subject_type, **subject},
        )

    def text_question(self, policy, sequence, text, pattern="", hint=""):
        return self.ensure(
            Question,
            {"policy": policy, "sequence": sequence},
            {
                "text": text,
                "question_type": Question.QuestionType.TEXT_INPUT,
                "is_single_line_question": True,
                "regex_pattern": pattern,
                "format_hint": hint,
            },
        )

    def choice_question(self, policy, sequence, text, choices, *, multiple=False):
        question = self.ensure(
            Question,
            {"policy": policy, "sequence": sequence},
            {
                "text": text,
                "question_type": Question.QuestionType.MULTIPLE_CHOICE,
                "is_multiple_selection_allowed": multiple,
                "regex_pattern": "",
            },
        )
        for position, (value, label) in enumerate(choices, start=1):
            self.ensure(
                QuestionChoice,
                {"question": question, "actual_value": value},
                {"sequence": position, "text": label},
            )
        return question

    def delivered_assignment(self, package, policy, target):
        """An assignment the person already holds, with its access in the directory."""
        if Assignment.objects.filter(
            target=target, access_package=package, state__in=OPEN_ASSIGNMENT_STATES
        ).exists():
            return
        start = self.now
        assignment = Assignment.objects.create(
            access_package=package,
            assignment_policy=policy,
            target=target,
            state=AssignmentState.DELIVERED,
            status="Delivered",
            schedule_start=start,
            schedule_end=policy.assignment_end(start),
        )
        self.result.created["assignments"] += 1
        for scope in package.resource_role_scopes.select_related("role__resource"):
            role = scope.role
            AssignmentResourceRole.objects.create(
                assignment=assignment,
                resource_role=role,
                target=target,
                state=GrantState.DELIVERED,
                attempts=1,
                delivered_datetime=start,
            )
            _grant_in_directory(role, target)


def _grant_in_directory(role, user):
    """What the built-in connector does when it delivers ``role`` to ``user``."""
    resource = role.resource
    source = {"source": GrantSource.ENTITLEMENT}
    if resource.origin_system == OriginSystem.GROUP:
        GroupMembership.objects.get_or_create(
            group_id=resource.group_id, user=user, role=role.origin_id, defaults=source
        )
    elif resource.origin_system == OriginSystem.APPLICATION:
        # "Default Access" has no app role row to point at: the grant row alone records it.
        if role.origin_id != AppRole.DEFAULT_ACCESS:
            AppRoleAssignment.objects.get_or_create(
                app_role_id=role.origin_id, user=user, defaults=source
            )
    elif resource.origin_system == OriginSystem.SITE:
        SiteRoleAssignment.objects.get_or_create(
            site_id=resource.site_id, user=user, role=role.origin_id, defaults=source
        )


def _next_quarter_start(today):
    quarter_month = 3 * ((today.month - 1) // 3) + 4
    year = today.year + (quarter_month > 12)
    return date(year, (quarter_month - 1) % 12 + 1, 1)


def _email(first, last):
    return f"{first}.{last}@{DEMO_DOMAIN}".lower()


# Department -> (catalog for its onboarding package, head, employees as (first, last, title)).
DEPARTMENTS = {
    "Engineering": (
        "Engineering",
        ("manager@demo.example", "Erin Engel", "Head of Engineering"),
        [
            ("employee@demo.example", "Emma Evans", "Software Engineer"),
            (_email("Eli", "Ekberg"), "Eli Ekberg", "Site Reliability Engineer"),
            (_email("Ethan", "Ellis"), "Ethan Ellis", "QA Engineer"),
        ],
    ),
    "Sales": (
        "Sales",
        (_email("Sam", "Sato"), "Sam Sato", "Head of Sales and Partnerships"),
        [
            (_email("Sara", "Silva"), "Sara Silva", "Account Executive"),
            (_email("Simon", "Stone"), "Simon Stone", "Sales Development Representative"),
        ],
    ),
    "Finance": (
        "Finance",
        (_email("Fiona", "Fischer"), "Fiona Fischer", "Head of Finance"),
        [
            (_email("Felix", "Fox"), "Felix Fox", "Accountant"),
            (_email("Frida", "Falk"), "Frida Falk", "Payments Specialist"),
        ],
    ),
    "HR": (
        "General",
        (_email("Hana", "Holm"), "Hana Holm", "Head of People"),
        [(_email("Harry", "Hughes"), "Harry Hughes", "HR Business Partner")],
    ),
    "Marketing": (
        "General",
        (_email("Maya", "Moreau"), "Maya Moreau", "Head of Marketing"),
        [(_email("Max", "Meyer"), "Max Meyer", "Content Marketer")],
    ),
}
# Which vice-president each department head reports to.
VICE_PRESIDENTS = {
    (_email("Victor", "Vance"), "Victor Vance", "VP Technology"): ["Engineering"],
    (_email("Valerie", "Voss"), "Valerie Voss", "VP Commercial"): ["Sales", "Marketing"],
    (_email("Omar", "Ortiz"), "Omar Ortiz", "VP Operations"): ["Finance", "HR"],
}


@transaction.atomic
def seed_organisation(*, now=None, directory_only=False):
    """Create or complete the demo organisation; returns a ``SeedResult``.

    ``directory_only``: only its directory (people, groups, applications, sites, the
    connected organization), none of its configuration: what ``config_apply`` of an exported
    demo configuration starts from."""
    s = _Seeder(now or timezone.now())
    Kind = StageApproverSet.Purpose
    Purpose = PolicySubjectSet.Purpose

    # --- People ----------------------------------------------------------------------
    ceo = s.person(_email("Clara", "Chen"), "Clara Chen", department="Executive", job_title="CEO")
    heads, staff, vps = {}, {}, {}
    for (email, name, title), departments in VICE_PRESIDENTS.items():
        vp = s.person(email, name, department="Executive", job_title=title, manager=ceo)
        vps[title] = vp
        for department in departments:
            _catalog, (h_email, h_name, h_title), employees = DEPARTMENTS[department]
            head = s.person(h_email, h_name, department=department, job_title=h_title, manager=vp)
            heads[department] = head
            staff[department] = [
                s.person(e, n, department=department, job_title=t, manager=head)
                for e, n, t in employees
            ]
    it_vp = vps["VP Technology"]
    admin = s.person(
        "admin@demo.example",
        "Ada Admin",
        department="IT",
        job_title="Identity Administrator",
        manager=it_vp,
        is_staff=True,
        is_superuser=True,
    )
    approver = s.person(
        "approver@demo.example",
        "Arno Approver",
        department="IT",
        job_title="Security Officer",
        manager=it_vp,
    )
    owner = s.person(
        "owner@demo.example",
        "Olga Owner",
        department="Engineering",
        job_title="Engineering Operations Lead",
        manager=heads["Engineering"],
        is_staff=True,
    )
    contractor = s.person(
        "contractor@demo.example",
        "Carl Contractor",
        department="Engineering",
        job_title="Contract Developer",
        manager=heads["Engineering"],
        company_name="Carl Consulting",
    )
    s.ensure_related(contractor, "sponsors", [heads["Engineering"]])

    partner = s.ensure(
        ConnectedOrganization,
        {"display_name": PARTNER},
        {
            "description": "Implementation partner working on customer projects.",
            "domains": [PARTNER_DOMAIN],
            "state": ConnectedOrganization.State.CONFIGURED,
        },
    )
    s.ensure_related(partner, "internal_sponsors", [heads["Sales"]])
    guest = s.person(
        f"guest@{PARTNER_DOMAIN}",
        "Gina Guest",
        department="",
        job_title="Partner Consultant",
        company_name=PARTNER,
        user_type=User.UserType.GUEST,
        connected_organization=partner,
    )
    s.ensure_related(guest, "sponsors", [heads["Sales"]])

    # --- Groups, applications, sites ---------------------------------------------------
    def group(name, description):
        return s.ensure(
            Group,
            {"display_name": name},
            {"description": description, "mail": f"{name.lower().replace(' ', '-')}@demo.example"},
        )

    approvers_group = group("Access Approvers", "Security group whose members approve access.")
    for person in (approver, heads["HR"]):
        s.member(approvers_group, person)
    team_groups = {d: group(f"{d} Team", f"Everyone in {d}.") for d in DEPARTMENTS}
    phoenix = group("Project Phoenix", "The team rebuilding the customer portal.")
    s.member(phoenix, heads["Engineering"], Role.OWNER)
    contractors = group("Contractors", "External developers working on our code.")
    auditors = group("Compliance Auditors", "Read access to financial records for audits.")
    summit = group("Company Summit Attendees", "People attending this year's company summit.")
    production = group("Production Operators", "Shell and database access to production.")
    offsite = group("Leadership Offsite", "Planning the leadership offsite.")
    partner_users = group("Partner Project Team", "Partners and employees on customer projects.")

    def application(name, description, roles=()):
        app = s.ensure(Application, {"display_name": name}, {"description": description})
        for role_name, value in roles:
            s.ensure(AppRole, {"application": app, "display_name": role_name}, {"value": value})
        return app

    wiki = application("Company Wiki", "The intranet wiki; one level of access.")
    crm = application(
        "CRM",
        "Customer relationship management.",
        [("Sales Rep", "sales.rep"), ("Sales Manager", "sales.manager")],
    )
    expenses = application(
        "Expense Reports", "Submit and approve expenses.", [("Submitter", "expenses.submit")]
    )
    payments = application(
        "Payments",
        "Supplier payments.",
        [
            ("Initiator", "payments.initiate"),
            ("Approver", "payments.approve"),
            ("Auditor", "payments.audit"),
        ],
    )

    def site(name, path):
        return s.ensure(Site, {"url": f"https://sites.demo.example/{path}"}, {"display_name": name})

    handbook = site("Engineering Handbook", "engineering")
    playbook = site("Sales Playbook", "sales")
    partner_site = site("Partner Collaboration", "partners")
    if directory_only:
        return s.result

    # --- Catalogs and their resources ------------------------------------------------------
    general = Catalog.objects.get(display_name=Catalog.GENERAL)

    def catalog(name, description, external=False):
        return s.ensure(
            Catalog,
            {"display_name": name},
            {"description": description, "is_externally_visible": external},
        )

    catalogs = {
        "General": general,
        "Engineering": catalog("Engineering", "Access for engineering teams and contractors."),
        "Sales": catalog("Sales", "Sales tools and customer data."),
        "Finance": catalog("Finance", "Financial systems; several packages are reviewed."),
        "Partners": catalog("Partners", "Access for connected organizations.", external=True),
    }
    s.ensure(
        RoleAssignment,
        {
            "role": AdminRole.CATALOG_OWNER,
            "principal": owner,
            "catalog": catalogs["Engineering"],
        },
    )

    def roles_of(catalog_name, origin_system, *role_ids, **target):
        resource = s.resource(catalogs[catalog_name], origin_system, **target)
        return [resource.roles.get(origin_id=r) for r in role_ids]

    def group_role(catalog_name, grp, role="Member"):
        return roles_of(catalog_name, OriginSystem.GROUP, role, group=grp)[0]

    def app_role(catalog_name, app, name):
        origin = (
            AppRole.DEFAULT_ACCESS
            if name == AppRole.DEFAULT_ACCESS
            else str(app.app_roles.get(display_name=name).id)
        )
        return roles_of(catalog_name, OriginSystem.APPLICATION, origin, application=app)[0]

    def site_role(catalog_name, site_obj, role):
        return roles_of(catalog_name, OriginSystem.SITE, role, site=site_obj)[0]

    # --- Access packages ----------------------------------------------------------------------
    onboarding = {}
    extra_roles = {
        "Engineering": [site_role("Engineering", handbook, "Member")],
        "Sales": [app_role("Sales", crm, "Sales Rep"), site_role("Sales", playbook, "Visitor")],
        "Finance": [app_role("Finance", expenses, "Submitter")],
    }
    for department, (catalog_name, _head, _staff) in DEPARTMENTS.items():
        package = s.package(
            catalogs[catalog_name],
            f"{department} onboarding",
            f"Everything a new {department} colleague needs on day one.",
            [
                group_role(catalog_name, team_groups[department]),
                app_role(catalog_name, wiki, AppRole.DEFAULT_ACCESS),
                *extra_roles.get(department, []),
            ],
        )
        policy = s.policy(
            package,
            f"{department} employees",
            description=f"New {department} colleagues; their manager approves.",
            allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
            is_approval_required_for_add=True,
            expiration_type=ExpirationType.NO_EXPIRATION,
            expiration_duration=None,
            enable_on_behalf_requestors_to_add_access=True,
        )
        s.stage(
            policy,
            1,
            (Kind.PRIMARY, SubjectType.REQUESTOR_MANAGER, {"manager_level": 1}),
            (Kind.FALLBACK_PRIMARY, SubjectType.SINGLE_USER, {"user": heads[department]}),
            is_approver_justification_required=False,
        )
        s.subject(policy, Purpose.ON_BEHALF_REQUESTOR, SubjectType.TARGET_MANAGER)
        onboarding[department] = (package, policy)

    # Automatic assignment (Entra's automatic policies): everyone in Sales or Engineering has
    # their onboarding package without asking, and moving to the other department in the
    # admin swaps it. No grace period, so the demo shows the swap at once.
    automatic = {}
    for department in AUTOMATIC_ONBOARDING:
        package, _policy = onboarding[department]
        automatic[department] = s.policy(
            package,
            f"{department} department (automatic)",
            description=f"Given to everyone whose department is {department}.",
            allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
            request_access_for_allowed_targets=True,
            enable_targets_to_self_add_access=False,
            enable_targets_to_self_remove_access=False,
            is_approval_required_for_add=False,
            expiration_type=ExpirationType.NO_EXPIRATION,
            expiration_duration=None,
            grace_period_before_access_removal=timedelta(0),
        )
        s.subject(
            automatic[department],
            Purpose.ALLOWED_TARGET,
            SubjectType.ATTRIBUTE_RULE_MEMBERS,
            membership_rule=f'user.department -eq "{department}"',
        )

    phoenix_package = s.package(
        catalogs["Engineering"],
        "Project Phoenix team",
        "Join the Project Phoenix team: its group and the engineering handbook.",
        [group_role("Engineering", phoenix), site_role("Engineering", handbook, "Member")],
    )
    phoenix_policy = s.policy(
        phoenix_package,
        "Project members",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=180),
        enable_targets_to_self_update_access=True,
    )
    s.stage(
        phoenix_policy,
        1,
        (Kind.PRIMARY, SubjectType.SINGLE_USER, {"user": heads["Engineering"]}),
        is_approver_justification_required=False,
    )
    s.choice_question(
        phoenix_policy,
        1,
        "Which part will you work on?",
        [("frontend", "Frontend"), ("backend", "Backend"), ("testing", "Testing")],
        multiple=True,
    )

    contractor_package = s.package(
        catalogs["Engineering"],
        "Contractor access",
        "30 days of access to the code and the wiki; your sponsor approves, you can extend.",
        [group_role("Engineering", contractors), app_role("Engineering", wiki, "Default Access")],
    )
    contractor_policy = s.policy(
        contractor_package,
        "Sponsored contractors",
        allowed_target_scope=AllowedTargetScope.ALL_DIRECTORY_USERS,
        is_approval_required_for_add=True,
        is_approval_required_for_update=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=30),
        enable_targets_to_self_update_access=True,
    )
    s.stage(
        contractor_policy,
        1,
        (Kind.PRIMARY, SubjectType.TARGET_USER_SPONSORS, {}),
        (Kind.FALLBACK_PRIMARY, SubjectType.SINGLE_USER, {"user": approver}),
        days=7,
    )
    s.text_question(
        contractor_policy,
        1,
        "Purchase order number (e.g. PO-123456)",
        pattern=r"PO-\d{6}",
        hint="PO, a dash and six digits, e.g. PO-123456",
    )

    compliance_package = s.package(
        catalogs["Finance"],
        "Compliance auditor",
        "Read access to financial records; reviewed every quarter by the auditor's manager.",
        [group_role("Finance", auditors), app_role("Finance", payments, "Auditor")],
    )
    compliance_policy = s.policy(
        compliance_package,
        "Auditors",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=365),
        review_is_enabled=True,
        review_start_date=_next_quarter_start(s.now.date()),
        review_recurrence=ReviewRecurrence.QUARTERLY,
        review_duration_in_days=14,
    )
    s.stage(
        compliance_policy,
        1,
        (Kind.PRIMARY, SubjectType.SINGLE_USER, {"user": heads["Finance"]}),
    )
    s.subject(compliance_policy, Purpose.PRIMARY_REVIEWER, SubjectType.TARGET_MANAGER)
    s.subject(compliance_policy, Purpose.FALLBACK_REVIEWER, SubjectType.SINGLE_USER, user=approver)

    summit_package = s.package(
        catalogs["General"],
        "Company summit",
        "Attendee channel and agenda for the company summit; access ends after the event.",
        [group_role("General", summit)],
    )
    summit_end = timezone.make_aware(
        datetime.combine(_next_quarter_start(s.now.date()) + timedelta(days=45), time(18))
    )
    summit_policy = s.policy(
        summit_package,
        "Attendees",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        expiration_type=ExpirationType.AFTER_DATE_TIME,
        expiration_duration=None,
        expiration_end_datetime=summit_end,
    )
    s.choice_question(
        summit_policy,
        1,
        "Which day will you attend?",
        [("day1", "Day 1: strategy"), ("day2", "Day 2: workshops"), ("both", "Both days")],
    )

    production_package = s.package(
        catalogs["Engineering"],
        "Production access",
        "Seven days of production access: your manager, then Access Approvers, approve.",
        [group_role("Engineering", production)],
    )
    production_policy = s.policy(
        production_package,
        "Engineers on call",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=7),
        allow_custom_assignment_schedule=True,
    )
    s.stage(
        production_policy,
        1,
        (Kind.PRIMARY, SubjectType.REQUESTOR_MANAGER, {"manager_level": 1}),
        (Kind.FALLBACK_PRIMARY, SubjectType.SINGLE_USER, {"user": approver}),
        days=3,
    )
    s.stage(
        production_policy,
        2,
        (Kind.PRIMARY, SubjectType.GROUP_MEMBERS, {"group": approvers_group}),
        days=3,
    )
    s.text_question(
        production_policy,
        1,
        "Incident or change ticket (e.g. CHG-1234)",
        r"[A-Z]{3}-\d{4}",
        hint="three capital letters, a dash and four digits, e.g. CHG-1234",
    )

    offsite_package = s.package(
        catalogs["General"],
        "Leadership offsite planning",
        "Hidden: shared with the planning team by link only.",
        [group_role("General", offsite)],
        is_hidden=True,
    )
    offsite_policy = s.policy(
        offsite_package,
        "Planning team",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        is_approval_required_for_add=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=60),
    )
    s.stage(offsite_policy, 1, (Kind.PRIMARY, SubjectType.SINGLE_USER, {"user": ceo}))

    partner_package = s.package(
        catalogs["Partners"],
        "Partner project collaboration",
        f"The project team and its collaboration site, for {PARTNER} consultants.",
        [group_role("Partners", partner_users), site_role("Partners", partner_site, "Member")],
    )
    partner_policy = s.policy(
        partner_package,
        f"{PARTNER} users",
        allowed_target_scope=AllowedTargetScope.SPECIFIC_CONNECTED_ORGANIZATION_USERS,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=90),
        enable_targets_to_self_update_access=True,
    )
    s.subject(
        partner_policy,
        Purpose.ALLOWED_TARGET,
        SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
        connected_organization=partner,
    )
    s.stage(
        partner_policy,
        1,
        (Kind.PRIMARY, SubjectType.INTERNAL_SPONSORS, {}),
        (Kind.FALLBACK_PRIMARY, SubjectType.SINGLE_USER, {"user": heads["Sales"]}),
    )
    partner_visitors = s.package(
        catalogs["Partners"],
        "Partner site visitor",
        "Read the partner collaboration site; for any connected organization.",
        [site_role("Partners", partner_site, "Visitor")],
    )
    s.policy(
        partner_visitors,
        "All connected organizations",
        allowed_target_scope=AllowedTargetScope.ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=30),
    )

    # Separation of duties: whoever initiates payments must not approve them.
    initiate = s.package(
        catalogs["Finance"],
        "Payment initiation",
        "Create supplier payments.",
        [app_role("Finance", payments, "Initiator")],
    )
    approve = s.package(
        catalogs["Finance"],
        "Payment approval",
        "Approve supplier payments created by others.",
        [app_role("Finance", payments, "Approver")],
    )
    for package in (initiate, approve):
        policy = s.policy(
            package,
            "Finance staff",
            allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
            is_approval_required_for_add=True,
            is_requestor_justification_required=True,
        )
        s.stage(policy, 1, (Kind.PRIMARY, SubjectType.SINGLE_USER, {"user": heads["Finance"]}))
    s.ensure_related(initiate, "incompatible_access_packages", [approve])
    s.ensure_related(approve, "incompatible_access_packages", [initiate])

    # A directory role as a resource: the package makes its holder a Sales package manager.
    sales_admin_role = roles_of(
        "Sales",
        OriginSystem.DIRECTORY_ROLE,
        AdminRole.ACCESS_PACKAGE_MANAGER,
        role_catalog=catalogs["Sales"],
    )[0]
    sales_admins = s.package(
        catalogs["Sales"],
        "Sales package managers",
        "Manage the access packages of the Sales catalog.",
        [sales_admin_role],
    )
    sales_admins_policy = s.policy(
        sales_admins,
        "Sales leads",
        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=180),
    )
    s.stage(sales_admins_policy, 1, (Kind.PRIMARY, SubjectType.SINGLE_USER, {"user": admin}))

    # --- Access people already hold --------------------------------------------------------
    for department, (package, policy) in onboarding.items():
        for person in [heads[department], *staff[department]]:
            s.delivered_assignment(package, automatic.get(department, policy), person)
    s.delivered_assignment(*onboarding["Engineering"], owner)
    s.delivered_assignment(phoenix_package, phoenix_policy, heads["Engineering"])
    s.delivered_assignment(compliance_package, compliance_policy, staff["Finance"][0])
    return s.result
