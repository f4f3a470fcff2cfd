"""The plan: what applying a document would create, change and delete; and applying it.

``make_plan(wanted, current)`` compares two Trees (document.py) node by node, by their keys,
and lists the changes in the document's order. ``Plan.apply`` makes them through the audited
configuration services (``config_save``, ``config_delete``, ``resource_add``,
``package_role_add`` / ``package_role_remove``) in an order the database accepts: deletions
first, deepest first, then creations and changes from the top down, then the
incompatibilities between packages (which may name packages created in the same run). It
then runs the checks that span several objects (entitlements/validation.py) on every policy
it touched. The caller holds the transaction: any error leaves nothing applied.
"""

from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError

from directory.models import Application, AppRole, ConnectedOrganization, Group, Site, User
from entitlements import validation
from entitlements.configuration import (
    config_delete,
    config_save,
    resource_add,
    resources_sync_roles,
)
from entitlements.connectors.base import DiscoveredGroup
from entitlements.errors import DomainError
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    Catalog,
    Channel,
    ConnectedSystem,
    OriginSystem,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    RoleAssignment,
    StageApproverSet,
)
from entitlements.services.automatic import automatic_policy_changed
from entitlements.services.packages import package_role_add, package_role_remove

from .document import (
    CATALOG_FIELDS,
    CHOICE_FIELDS,
    LOCALIZATION_FIELDS,
    PACKAGE_FIELDS,
    POLICY_FIELDS,
    POLICY_SUBJECTS,
    QUESTION_FIELDS,
    RESOURCE_FIELDS,
    STAGE_APPROVERS,
    STAGE_FIELDS,
    ConfigError,
    Field,
    _member_sort,
    _sorted,
    member_document,
)

SPECS = {
    "catalog": CATALOG_FIELDS,
    "resource": RESOURCE_FIELDS,
    "package": PACKAGE_FIELDS,
    "policy": POLICY_FIELDS,
    "stage": STAGE_FIELDS,
    "question": QUESTION_FIELDS,
    "choice": [*CHOICE_FIELDS, Field("sequence", "sequence", "int", 1, False)],
    "localization": LOCALIZATION_FIELDS,
}

# Deletions run in this order: what refers to a row goes before the row.
DELETE_RANK = {
    "subjects": 0,
    "choice": 1,
    "localization": 1,
    "stage": 2,
    "question": 2,
    "policy": 3,
    "roles": 4,
    "package": 5,
    "resource": 6,
    "catalogRoles": 7,
    "catalog": 8,
}


def _flow(value):
    """A value as it reads in the document, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


@dataclass
class Change:
    """One node to create, change or delete, with the fields and set members that differ."""

    op: str  # create, change, delete
    node: object  # the wanted node (create, change) or the current one (delete)
    current: object = None
    fields: list = field(default_factory=list)  # (Field, old, new)
    added: dict = field(default_factory=dict)  # set key -> [(member, path)]
    removed: dict = field(default_factory=dict)  # set key -> [(member, rows)]

    def lines(self):
        sign = {"create": "+", "change": "~", "delete": "-"}[self.op]
        out = [f"{sign} {self.node.kind} {self.node.label}"]
        for spec, old, new in self.fields:
            out.append(f"    - {spec.key}: {_flow(spec.to_document(old))}")
            out.append(f"    + {spec.key}: {_flow(spec.to_document(new))}")
        for key, members in self.removed.items():
            out += [f"    - {key}: {_flow(member_document(key, m))}" for m, _rows in members]
        for key, members in self.added.items():
            out += [f"    + {key}: {_flow(member_document(key, m))}" for m, _path in members]
        return out


@dataclass
class Plan:
    wanted: object
    changes: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.changes)

    def counts(self):
        counts = {"create": 0, "change": 0, "delete": 0}
        for change in self.changes:
            counts[change.op] += 1
        return counts

    def summary(self):
        counts = self.counts()
        return (
            f"Plan: {counts['create']} to create, {counts['change']} to change, "
            f"{counts['delete']} to delete."
        )

    def render(self):
        if not self.changes:
            return "No changes. The configuration matches the file."
        lines = [line for change in self.changes for line in change.lines()]
        return "\n".join([*lines, "", self.summary()])

    def apply(self, *, actor, now):
        """Make the changes; returns the warnings about what was applied (works, may surprise)."""
        applier = Applier(actor=actor, now=now)
        applier.run(self)
        return applier.warnings


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------


def make_plan(wanted, current):
    """The changes that turn ``current`` into ``wanted``, in the document's order. Wanted nodes
    that exist get the current node's row, so that applying can use it."""
    plan = Plan(wanted)
    for name, nodes in wanted.collections().items():
        _compare_collection(plan, nodes, current.collections()[name])
    return plan


def _compare_collection(plan, wanted, current):
    for key in sorted(set(wanted) | set(current), key=_member_sort):
        _compare(plan, wanted.get(key), current.get(key))


def _compare(plan, want, have):
    if want is None:
        plan.changes.append(Change("delete", have, have))
        return
    specs = SPECS[want.kind]
    if have is None:
        change = Change("create", want)
    else:
        want.obj = have.obj
        change = Change("change", want, have)
        change.fields = [
            (spec, have.values[spec.key], want.values[spec.key])
            for spec in specs
            if have.values[spec.key] != want.values[spec.key]
        ]
    for key, members in want.sets.items():
        existing = have.sets.get(key, {}) if have else {}
        added = [(m, path) for m, path in members.items() if m not in existing]
        removed = [(m, rows) for m, rows in existing.items() if m not in members]
        # Two rows that mean the same: one stays, the others go.
        removed += [(m, rows[1:]) for m, rows in existing.items() if m in members and rows[1:]]
        if added:
            change.added[key] = sorted(added, key=lambda item: _member_sort(item[0]))
        if removed:
            change.removed[key] = sorted(removed, key=lambda item: _member_sort(item[0]))
    if change.op == "create" or change.fields or change.added or change.removed:
        plan.changes.append(change)
    for key, children in want.children.items():
        _compare_collection(plan, children, have.children.get(key, {}) if have else {})


# --------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------


def _error_for(node, error, specs=()):
    """A ValidationError or DomainError as a ConfigError at the node's place."""
    where = node.path or f"{node.kind} {node.label}"
    if isinstance(error, DomainError):
        return ConfigError(where, error.message)
    keys = {spec.attr: spec.key for spec in specs}
    keys.update(
        {"approver_sets": "primaryApprovers", "display_name": "name", "sequence": "sequence"}
    )
    if hasattr(error, "message_dict"):
        name, messages = next(iter(error.message_dict.items()))
        suffix = f".{keys.get(name, name)}" if name != "__all__" and name in keys else ""
        return ConfigError(f"{where}{suffix}", " ".join(messages))
    return ConfigError(where, " ".join(error.messages))


@dataclass
class _Place:
    """Where a member of a set is in the document, for its errors."""

    path: str
    kind: str
    label: str = ""


class Applier:
    def __init__(self, *, actor, now):
        self.actor = actor
        self.now = now
        self.lookups = {}
        self.touched_policies = set()  # (package key, policy key)
        self.automatic = {}  # automatic policies whose targets may have changed, by id
        self.warnings = []

    def save(self, node, obj, m2m=None):
        # clean() reads a manager without a level as the direct manager and stores 1; the
        # file said no level, so none is stored, as the export read it.
        no_level = getattr(obj, "manager_level", 0) is None
        try:
            obj.full_clean()
        except ValidationError as error:
            raise _error_for(node, error, SPECS.get(node.kind, ())) from None
        if no_level:
            obj.manager_level = None
        config_save(actor=self.actor, obj=obj, m2m=m2m, channel=Channel.SYSTEM, now=self.now)
        return obj

    def delete(self, node, rows):
        try:
            config_delete(actor=self.actor, objs=rows, channel=Channel.SYSTEM, now=self.now)
        except (ProtectedError, IntegrityError):
            raise ConfigError(
                node.path or f"{node.kind} {node.label}",
                "cannot be deleted: assignments, requests or other rows still refer to it",
            ) from None

    def get(self, model, **lookup):
        key = (model, tuple(sorted(lookup.items())))
        if key not in self.lookups:
            self.lookups[key] = model._default_manager.get(**lookup)
        return self.lookups[key]

    def run(self, plan):
        self.wanted = plan.wanted
        deletions = []
        for change in plan.changes:
            if change.op == "delete":
                deletions.append((DELETE_RANK[change.node.kind], change.node, None))
            for key, members in change.removed.items():
                rank = {"roles": "catalogRoles" if change.node.kind == "catalog" else "roles"}
                rank = DELETE_RANK[rank.get(key, "subjects")]
                if key in ("incompatibleAccessPackages", "incompatibleGroups"):
                    continue  # set with the package's many-to-many values below
                deletions.append((rank, change.node, (key, members)))
        for _rank, node, members in sorted(deletions, key=lambda item: item[0]):
            self.touch(node)
            if members is None:
                self.delete(node, [node.obj])
            else:
                self.remove_members(node, *members)
        incompatible = []
        for change in plan.changes:
            if change.op == "delete":
                continue
            node = change.node
            self.touch(node)
            if change.op == "create" or change.fields:
                self.create_or_change(node, change)
            for key, members in change.added.items():
                if key in ("incompatibleAccessPackages", "incompatibleGroups"):
                    continue
                for member, path in members:
                    self.add_member(node, key, member, path)
            if any(
                key in ("incompatibleAccessPackages", "incompatibleGroups")
                for key in [*change.added, *change.removed]
            ):
                incompatible.append(node)
        for node in incompatible:
            self.set_incompatible(node)
        for package_key, policy_key in sorted(self.touched_policies, key=repr):
            package = self.wanted.packages.get(package_key)
            policy = package.children["policies"].get(policy_key) if package else None
            if policy is not None:
                self.check_policy(policy)
        for policy in self.automatic.values():
            automatic_policy_changed(policy)

    def touch(self, node):
        """Remember the policy a node belongs to, for the checks across its objects."""
        while node is not None and node.kind != "policy":
            node = node.parent
        if node is not None:
            self.touched_policies.add((node.parent.key, node.key))

    # --- scalar rows -------------------------------------------------------------------

    def create_or_change(self, node, change):
        specs = SPECS[node.kind]
        if node.kind == "resource" and change.op == "create":
            return self.add_resource(node)
        obj = node.obj
        if obj is None:
            obj = self.new_row(node)
        for spec in specs:
            setattr(obj, spec.attr, node.values[spec.key])
        node.obj = self.save(node, obj)
        if node.kind == "policy" and obj.request_access_for_allowed_targets:
            self.automatic[obj.pk] = obj
        return node.obj

    def new_row(self, node):
        parent = node.parent.obj if node.parent else None
        if node.kind == "catalog":
            return Catalog(display_name=node.key[0])
        if node.kind == "package":
            catalog = self.get(Catalog, display_name=node.key[0])
            return AccessPackage(catalog=catalog, display_name=node.key[1])
        if node.kind == "policy":
            return AssignmentPolicy(access_package=parent, display_name=node.key[0])
        if node.kind == "stage":
            return ApprovalStage(policy=parent, sequence=node.key[0])
        if node.kind == "question":
            return Question(policy=parent, sequence=node.key[0])
        if node.kind == "choice":
            return QuestionChoice(question=parent, actual_value=node.key[0])
        if node.kind == "localization":
            return QuestionLocalization(question=parent, language_code=node.key[0])
        raise AssertionError(node.kind)

    def add_resource(self, node):
        catalog_name, target = node.key
        kind = target[0]
        kwargs = {"catalog": self.get(Catalog, display_name=catalog_name)}
        if kind == "group":
            kwargs.update(
                origin_system=OriginSystem.GROUP, group=self.get(Group, display_name=target[1])
            )
        elif kind == "application":
            kwargs.update(
                origin_system=OriginSystem.APPLICATION,
                application=self.get(Application, display_name=target[1]),
            )
        elif kind == "site":
            kwargs.update(origin_system=OriginSystem.SITE, site=self.get(Site, url=target[1]))
        elif kind == "directoryRole":
            role_catalog = self.get(Catalog, display_name=target[1]) if target[1] else None
            kwargs.update(origin_system=OriginSystem.DIRECTORY_ROLE, role_catalog=role_catalog)
        elif kind == "system":
            system = self.get(ConnectedSystem, name=target[1])
            kwargs.update(
                origin_system=OriginSystem.GROUP,
                connected_system=system,
                discovered=DiscoveredGroup(origin_id=target[2], display_name=node.values["name"]),
            )
        try:
            resource = resource_add(
                actor=self.actor,
                display_name=node.values["name"],
                description=node.values["description"],
                channel=Channel.SYSTEM,
                now=self.now,
                **kwargs,
            )
        except (DomainError, ValidationError) as error:
            raise _error_for(node, error, RESOURCE_FIELDS) from None
        node.obj = resource
        if resource.drift_mode != node.values["driftMode"]:
            resource.drift_mode = node.values["driftMode"]
            self.save(node, resource)
        return resource

    # --- members of sets -----------------------------------------------------------------

    def subject_row(self, node, key, member):
        _s, subject_type, user, group, organization, level, rule = member
        values = {
            "subject_type": subject_type,
            "user": self.get(User, email=user) if user else None,
            "group": self.get(Group, display_name=group) if group else None,
            "connected_organization": (
                self.get(ConnectedOrganization, display_name=organization) if organization else None
            ),
            "manager_level": level,
        }
        if node.kind == "policy":
            return PolicySubjectSet(
                policy=node.obj, purpose=POLICY_SUBJECTS[key], membership_rule=rule, **values
            )
        return StageApproverSet(stage=node.obj, purpose=STAGE_APPROVERS[key], **values)

    def add_member(self, node, key, member, path):
        where = _Place(path, "member")
        if node.kind == "catalog":
            row = RoleAssignment(
                role=member[1], principal=self.get(User, email=member[2]), catalog=node.obj
            )
            self.save(where, row)
        elif node.kind == "package":
            role = self.resource_role(member, path, node)
            try:
                package_role_add(
                    actor=self.actor,
                    access_package=node.obj,
                    role=role,
                    channel=Channel.SYSTEM,
                    now=self.now,
                )
            except DomainError as error:
                raise ConfigError(path, error.message) from None
        else:
            row = self.subject_row(node, key, member)
            self.save(where, row)
            if key == "allowedTargets" and node.obj.request_access_for_allowed_targets:
                self.automatic[node.obj.pk] = node.obj

    def resource_role(self, member, path, package_node):
        """The resource role a package's member names (a role it gained since it was added
        to the catalog, such as an application's new app role, is added to it first)."""
        _r, target, key = member
        resource = self.wanted.resources[(package_node.key[0], target)].obj
        for attempt in range(2):
            roles = resource.roles.all()
            if resource.origin_system == OriginSystem.APPLICATION and key != AppRole.DEFAULT_ACCESS:
                role = roles.filter(display_name=key).first()
            else:
                role = roles.filter(origin_id=key).first()
            if role is not None:
                return role
            if attempt == 0:
                resources_sync_roles(actor=self.actor, resources=[resource], now=self.now)
        raise ConfigError(f"{path}.role", f"the resource has no role {key}")

    def remove_members(self, node, key, members):
        if node.kind == "package":
            for _member, rows in members:
                for scope in rows:
                    package_role_remove(
                        actor=self.actor,
                        access_package=node.obj,
                        role=scope.role,
                        channel=Channel.SYSTEM,
                        now=self.now,
                    )
            return
        self.delete(node, [row for _member, rows in members for row in rows])
        if node.kind == "policy" and key == "allowedTargets":
            self.automatic[node.obj.pk] = node.obj

    def set_incompatible(self, node):
        packages = []
        for member in sorted(node.sets["incompatibleAccessPackages"], key=_member_sort):
            packages.append(
                self.get(AccessPackage, catalog__display_name=member[1], display_name=member[2])
            )
        groups = [
            self.get(Group, display_name=member[1])
            for member in sorted(node.sets["incompatibleGroups"], key=_member_sort)
        ]
        m2m = {"incompatible_access_packages": packages, "incompatible_groups": groups}
        self.save(node, node.obj, m2m=m2m)

    # --- checks across objects -----------------------------------------------------------

    def check_policy(self, node):
        policy = AssignmentPolicy.objects.get(pk=node.obj.pk)
        subjects = list(policy.subject_sets.all())
        try:
            validation.check_policy_subjects(policy, subjects)
            validation.check_policy_reviewers(policy, subjects)
        except ValidationError as error:
            raise _error_for(node, error, POLICY_FIELDS) from None
        stages = _sorted(node.children["stages"])
        where = f"policy {node.label}: "
        self.warnings += validation.policy_warnings(policy, stage_count=len(stages))
        for stage_node in stages:
            stage = stage_node.obj
            approvers = list(stage.approver_sets.all())
            try:
                validation.check_stage_approvers(stage, approvers)
            except ValidationError as error:
                raise _error_for(stage_node, error, STAGE_FIELDS) from None
            self.warnings += [where + w for w in validation.approver_warnings(stage, approvers)]
        for question_node in _sorted(node.children["questions"]):
            question = question_node.obj
            try:
                validation.check_question_choices(question, list(question.choices.all()))
            except ValidationError as error:
                raise _error_for(question_node, error, QUESTION_FIELDS) from None
