"""Bulk data at Entra's tenant limits (100,000 users, 20,000 packages, 300,000 assignments).

Everything generated is named with the ``gen-`` prefix and numbered, so the sizes given are
totals: a second run with the same sizes finds everything and inserts nothing, a run with
larger sizes adds only the difference. Rows go in with ``bulk_create`` in batches, each
batch in its own transaction, so an interrupted run keeps whole batches and can resume.
"""

import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from demo.organisation import COMPANY, DEMO_DOMAIN, DEMO_PASSWORD
from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.configuration import resource_origin_id, resource_roles_for
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentResourceRole,
    AssignmentState,
    Catalog,
    ExpirationType,
    GrantState,
    OriginSystem,
    Resource,
    ResourceRole,
    ResourceRoleScope,
)
from entitlements.models.catalogs import builtin_system_id

PREFIX = "gen-"
USER_EMAIL = PREFIX + "user-{:06d}@" + DEMO_DOMAIN
GROUP_NAME = PREFIX + "group-{:05d}"
CATALOG_NAME = PREFIX + "catalog-{:04d}"
PACKAGE_NAME = PREFIX + "package-{:05d}"
POLICY_NAME = "All members"
BATCH_SIZE = 5000
PACKAGES_PER_CATALOG = 100
# Each manager has up to this many direct reports: 100,000 people make a tree six levels deep.
FANOUT = 8

DEPARTMENTS = ["Engineering", "Sales", "Finance", "HR", "Marketing", "Support", "Operations"]
TITLES = {
    "Engineering": ["Software Engineer", "Site Reliability Engineer", "QA Engineer"],
    "Sales": ["Account Executive", "Sales Development Representative"],
    "Finance": ["Accountant", "Financial Analyst"],
    "HR": ["HR Business Partner", "Recruiter"],
    "Marketing": ["Content Marketer", "Product Marketing Manager"],
    "Support": ["Support Engineer", "Customer Success Manager"],
    "Operations": ["Operations Analyst", "Facilities Coordinator"],
}
FIRST_NAMES = [
    "Alex",
    "Blake",
    "Casey",
    "Dana",
    "Eden",
    "Finley",
    "Gray",
    "Harper",
    "Indy",
    "Jordan",
    "Kai",
    "Logan",
    "Morgan",
    "Noel",
    "Oakley",
    "Parker",
    "Quinn",
    "Riley",
    "Sage",
    "Taylor",
    "Uma",
    "Val",
    "Wren",
    "Xan",
    "Yael",
    "Zion",
]
LAST_NAMES = [
    "Adler",
    "Brooks",
    "Carter",
    "Dalton",
    "Ellis",
    "Foster",
    "Garcia",
    "Hayes",
    "Ito",
    "Jensen",
    "Khan",
    "Larsen",
    "Moreno",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quint",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Xu",
    "Young",
    "Zimmer",
]


@dataclass
class Sizes:
    """How many generated objects of each kind should exist (totals, not additions)."""

    users: int = 0
    groups: int = 0
    catalogs: int = 0
    packages: int = 0
    assignments: int = 0


@dataclass
class GenerateResult:
    created: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def changed(self):
        return any(self.created.values())


def delivered_assignments(package, users, end, *, batch_size=2000):
    """Delivered assignments of ``users`` to ``package`` (its one policy and one role), ending
    within a second after ``end``, with their delivered grants: what the benchmarks expire."""
    policy = package.assignment_policies.get()
    role_id = package.resource_role_scopes.get().role_id
    assignments = Assignment.objects.bulk_create(
        [
            Assignment(
                access_package=package,
                assignment_policy=policy,
                target=user,
                state=AssignmentState.DELIVERED,
                schedule_start=end - timedelta(days=30),
                schedule_end=end + timedelta(milliseconds=i % 1000),
            )
            for i, user in enumerate(users)
        ],
        batch_size=batch_size,
    )
    AssignmentResourceRole.objects.bulk_create(
        [
            AssignmentResourceRole(
                assignment=a,
                resource_role_id=role_id,
                target_id=a.target_id,
                state=GrantState.DELIVERED,
            )
            for a in assignments
        ],
        batch_size=batch_size,
    )
    return assignments


def default_sizes(*, users=0, packages=0, assignments=0, groups=None, catalogs=None):
    """Fill in groups (one per package) and catalogs (one per 100 packages) when not given."""
    if groups is None:
        groups = packages
    if catalogs is None:
        catalogs = -(-packages // PACKAGES_PER_CATALOG)
    return Sizes(users, groups, catalogs, packages, assignments)


def _index(name):
    return int(re.search(r"(\d+)", name.removeprefix(PREFIX)).group(1))


def _batches(items, size=BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Generator:
    def __init__(self, *, progress_file=None, quiet=False, now=None):
        self.now = now or timezone.now()
        self.progress_file = progress_file
        self.quiet = quiet
        self.result = GenerateResult()

    def _bar(self, phase, total):
        return tqdm(
            total=total,
            desc=f"{phase:<11}",
            unit=f" {phase}",
            unit_scale=True,
            file=self.progress_file,
            disable=self.quiet,
            leave=True,
        )

    def _insert(self, phase, items, build):
        """Insert ``items`` in batches; ``build(batch)`` returns [(model, objs, kwargs)...]."""
        started = time.monotonic()
        with self._bar(phase, len(items)) as bar:
            for batch in _batches(items):
                with transaction.atomic():
                    for model, objs, kwargs in build(batch):
                        model.objects.bulk_create(objs, batch_size=BATCH_SIZE, **kwargs)
                bar.update(len(batch))
        self.result.created[phase] = len(items)
        self.result.seconds[phase] = time.monotonic() - started

    def check(self, sizes):
        """Refuse sizes that cannot be met, before anything is written."""
        if sizes.packages and not (sizes.groups and sizes.catalogs):
            raise ValueError("Generated packages need at least one group and one catalog.")
        users = max(sizes.users, User.objects.filter(email__startswith=PREFIX + "user-").count())
        packages = max(
            sizes.packages,
            AccessPackage.objects.filter(display_name__startswith=PREFIX).count(),
        )
        if sizes.assignments > users * packages:
            raise ValueError(
                f"{sizes.assignments:,} assignments need more users or packages: {users:,} "
                f"generated users times {packages:,} generated packages give at most "
                f"{users * packages:,} different pairs."
            )

    def run(self, sizes):
        self.check(sizes)
        self.users(sizes.users)
        self.groups(sizes.groups)
        self.catalogs(sizes.catalogs)
        self.packages(sizes.packages)
        self.assignments(sizes.assignments)
        return self.result

    # --- Users ----------------------------------------------------------------------------
    def users(self, total):
        existing = {
            _index(email): pk
            for email, pk in User.objects.filter(email__startswith=PREFIX + "user-").values_list(
                "email", "pk"
            )
        }
        manager, department, depth = _org_tree(total)
        missing = [i for i in range(1, total + 1) if i not in existing]
        if not missing:
            return
        password = make_password(DEMO_PASSWORD)
        ids = dict(existing)

        def build(batch):
            users = []
            for i in batch:
                first = FIRST_NAMES[i % len(FIRST_NAMES)]
                last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
                user = User(
                    email=USER_EMAIL.format(i),
                    password=password,
                    display_name=f"{first} {last} ({i})",
                    department=department[i],
                    job_title=_title(i, depth[i], department[i]),
                    company_name=COMPANY,
                    employee_id=f"G{i:06d}",
                    manager_id=ids.get(manager[i]),
                )
                ids[i] = user.pk
                users.append(user)
            return [(User, users, {})]

        self._insert("users", missing, build)

    # --- Groups and catalogs ------------------------------------------------------------------
    def groups(self, total):
        existing = set(
            Group.objects.filter(display_name__startswith=PREFIX).values_list(
                "display_name", flat=True
            )
        )
        missing = [i for i in range(1, total + 1) if GROUP_NAME.format(i) not in existing]
        if missing:
            self._insert(
                "groups",
                missing,
                lambda batch: [
                    (
                        Group,
                        [
                            Group(
                                display_name=GROUP_NAME.format(i),
                                description="Generated for load tests.",
                            )
                            for i in batch
                        ],
                        {},
                    )
                ],
            )

    def catalogs(self, total):
        existing = set(
            Catalog.objects.filter(display_name__startswith=PREFIX).values_list(
                "display_name", flat=True
            )
        )
        missing = [i for i in range(1, total + 1) if CATALOG_NAME.format(i) not in existing]
        if missing:
            self._insert(
                "catalogs",
                missing,
                lambda batch: [
                    (
                        Catalog,
                        [
                            Catalog(
                                display_name=CATALOG_NAME.format(i),
                                description="Generated for load tests.",
                            )
                            for i in batch
                        ],
                        {},
                    )
                ],
            )

    # --- Packages: one group role each, one policy each ----------------------------------------
    def packages(self, total):
        existing = set(
            AccessPackage.objects.filter(display_name__startswith=PREFIX).values_list(
                "display_name", flat=True
            )
        )
        missing = [i for i in range(1, total + 1) if PACKAGE_NAME.format(i) not in existing]
        if not missing:
            return
        catalogs = _by_index(Catalog.objects.filter(display_name__startswith=PREFIX))
        groups = _by_index(Group.objects.filter(display_name__startswith=PREFIX))
        # (catalog id, group id) -> the Member role of that group's resource in that catalog
        member_roles = {
            (catalog_id, group_id): pk
            for catalog_id, group_id, pk in ResourceRole.objects.filter(
                origin_id="Member",
                resource__origin_system=OriginSystem.GROUP,
                resource__group__display_name__startswith=PREFIX,
            ).values_list("resource__catalog_id", "resource__group_id", "pk")
        }

        # Named once: left to its default, each new resource would look the system up.
        builtin = builtin_system_id()

        def build(batch):
            resources, roles, packages, policies, scopes = [], [], [], [], []
            for i in batch:
                catalog = catalogs[(i - 1) % len(catalogs)]
                group = groups[(i - 1) % len(groups)]
                key = (catalog.pk, group.pk)
                if key not in member_roles:
                    resource = Resource(
                        catalog=catalog,
                        connected_system_id=builtin,
                        origin_system=OriginSystem.GROUP,
                        group=group,
                        display_name=group.display_name,
                    )
                    resource.origin_id = resource_origin_id(resource)
                    resources.append(resource)
                    for origin_id, name in resource_roles_for(resource):
                        role = ResourceRole(
                            resource=resource, origin_id=origin_id, display_name=name
                        )
                        roles.append(role)
                        if origin_id == "Member":
                            member_roles[key] = role.pk
                package = AccessPackage(
                    catalog=catalog,
                    display_name=PACKAGE_NAME.format(i),
                    description=f"Generated package granting {group.display_name}.",
                )
                packages.append(package)
                policies.append(
                    AssignmentPolicy(
                        access_package=package,
                        display_name=POLICY_NAME,
                        allowed_target_scope=AllowedTargetScope.ALL_MEMBER_USERS,
                        is_approval_required_for_add=False,
                        is_requestor_justification_required=False,
                        expiration_type=ExpirationType.AFTER_DURATION,
                        expiration_duration=timedelta(days=365),
                    )
                )
                scopes.append(ResourceRoleScope(access_package=package, role_id=member_roles[key]))
            return [
                (Resource, resources, {}),
                (ResourceRole, roles, {}),
                (AccessPackage, packages, {}),
                (AssignmentPolicy, policies, {}),
                (ResourceRoleScope, scopes, {}),
            ]

        self._insert("packages", missing, build)

    # --- Assignments: delivered, with their grants and group memberships --------------------------
    def assignments(self, total):
        packages = list(
            ResourceRoleScope.objects.filter(access_package__display_name__startswith=PREFIX)
            .order_by("access_package__display_name")
            .values_list("access_package_id", "role_id", "role__resource__group_id")
        )
        policy_of = dict(
            AssignmentPolicy.objects.filter(
                access_package__display_name__startswith=PREFIX, display_name=POLICY_NAME
            ).values_list("access_package_id", "pk")
        )
        existing = set(
            Assignment.objects.filter(
                access_package__display_name__startswith=PREFIX,
                state__in=OPEN_ASSIGNMENT_STATES,
            ).values_list("target_id", "access_package_id")
        )
        needed = total - len(existing)
        if needed <= 0:
            return
        users = list(
            User.objects.filter(email__startswith=PREFIX + "user-")
            .order_by("email")
            .values_list("pk", flat=True)
        )
        pairs = []
        for target, package in _spread_pairs(len(users), len(packages)):
            pair = (users[target], packages[package])
            if (pair[0], pair[1][0]) not in existing:
                pairs.append(pair)
                if len(pairs) == needed:
                    break
        now = self.now
        duration = timedelta(days=365)

        def build(batch):
            assignments, grants, memberships = [], [], []
            for n, (user_id, (package_id, role_id, group_id)) in enumerate(batch):
                # Starts spread over the past year, so expiry work is spread too.
                start = now - timedelta(days=n % 360, minutes=n % 1440)
                assignment = Assignment(
                    access_package_id=package_id,
                    assignment_policy_id=policy_of[package_id],
                    target_id=user_id,
                    state=AssignmentState.DELIVERED,
                    status="Delivered",
                    schedule_start=start,
                    schedule_end=start + duration,
                    created=start,
                )
                assignments.append(assignment)
                grants.append(
                    AssignmentResourceRole(
                        assignment=assignment,
                        resource_role_id=role_id,
                        target_id=user_id,
                        state=GrantState.DELIVERED,
                        attempts=1,
                        delivered_datetime=start,
                        created=start,
                    )
                )
                memberships.append(
                    GroupMembership(
                        group_id=group_id,
                        user_id=user_id,
                        role=GroupMembership.Role.MEMBER,
                        source=GrantSource.ENTITLEMENT,
                        created=start,
                    )
                )
            return [
                (Assignment, assignments, {}),
                (AssignmentResourceRole, grants, {}),
                # Two packages may share a group: one membership serves both.
                (GroupMembership, memberships, {"ignore_conflicts": True}),
            ]

        self._insert("assignments", pairs, build)


def _by_index(queryset):
    """Generated objects ordered by their number, so the n-th one is stable between runs."""
    return sorted(queryset, key=lambda obj: _index(obj.display_name))


def _spread_pairs(n_users, n_packages):
    """Every (user, package) index pair once, each round giving every user one more package.

    Pair k is user k mod U and package (k div U + k mod U) mod P: for one user the package
    index steps through all P values, so no pair repeats and packages fill up evenly.
    """
    for k in range(n_users * n_packages):
        user, round_ = k % n_users, k // n_users
        yield user, (round_ + user) % n_packages


def _org_tree(total):
    """Manager, department and depth of generated people 1..total, as lists indexed by number."""
    manager = [None] * (total + 1)
    department = [""] * (total + 1)
    depth = [0] * (total + 1)
    for i in range(1, total + 1):
        if i == 1:
            department[i] = "Executive"
            continue
        boss = (i - 2) // FANOUT + 1
        manager[i], depth[i] = boss, depth[boss] + 1
        department[i] = DEPARTMENTS[(i - 2) % len(DEPARTMENTS)] if boss == 1 else department[boss]
    return manager, department, depth


def _title(i, depth, department):
    if depth == 0:
        return "Chief Executive Officer"
    if depth == 1:
        return f"VP {department}"
    if depth == 2:
        return f"Director, {department}"
    if depth == 3:
        return f"{department} Manager"
    titles = TITLES[department]
    return titles[i % len(titles)]
