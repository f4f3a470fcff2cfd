"""The configuration as a tree of nodes, read from the database or from a YAML document.

Both sides of a plan are the same shape: a ``Node`` per catalog, resource, package, policy,
stage, question, choice and translation, found by a human key (a catalog by its name, a
package by its catalog and name, a stage by its number), with its values in one canonical
form (durations as timedelta, times in UTC, people by email, groups by name). Sets without
a key of their own (approvers, who may request, the roles a package grants) are compared as
sets of canonical members.

``read_database`` builds the tree from the rows, ``read_document`` from a parsed YAML
document (checking it, with errors naming their place in the document), ``write_document``
turns a tree back into a document whose keys and order are always the same.
"""

import re
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import yaml
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime, parse_duration
from django.utils.duration import duration_iso_string

from directory.models import Application, AppRole, ConnectedOrganization, Group, Site, User
from entitlements.configuration import resource_roles_for
from entitlements.models import (
    CATALOG_SCOPED_ROLES,
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    Catalog,
    ConnectedSystem,
    OriginSystem,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    Resource,
    ResourceRoleScope,
    RoleAssignment,
    StageApproverSet,
    SubjectType,
)

VERSION = 1


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 4, 4


def _short(value):
    """A value as a message shows it: cut short, however large or deep it is."""
    return _REPR.repr(value)


class ConfigError(Exception):
    """A problem with the file, named by its place in the document."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


# --------------------------------------------------------------------------------------
# Durations, as people write them ("30 days", "8 hours") or in ISO 8601 ("P30D")
# --------------------------------------------------------------------------------------

_UNITS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1, "week": 604800}
_WORDS = re.compile(r"(\d+)\s*(week|day|hour|minute|second)s?", re.IGNORECASE)


def duration_words(value):
    """'30 days', '1 day 12 hours', '8 hours'; ISO 8601 where seconds have fractions."""
    if value.microseconds:
        return duration_iso_string(value)
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0 days"
    parts = []
    for unit in ("day", "hour", "minute", "second"):
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts)


def parse_duration_text(text):
    """A timedelta from '30 days', '2 weeks', '1 day 12 hours', 'P30D' or '30 00:00:00'.

    A bare number is refused: a duration needs its unit."""
    if not isinstance(text, str):
        raise ValueError(
            f"{_short(text)} is not a duration: write it with its unit, e.g. '30 days', "
            "'8 hours' or 'P30D'"
        )
    try:
        return _parse_duration(text.strip())
    except OverflowError:
        raise ValueError(f"{_short(text)} is too long a duration") from None


def _parse_duration(text):
    words = text.replace(",", " ").replace(" and ", " ")
    pairs = _WORDS.findall(words)
    if pairs and not _WORDS.sub("", words).strip():
        return timedelta(seconds=sum(int(n) * _UNITS[unit.lower()] for n, unit in pairs))
    value = parse_duration(text)
    if value is None:
        raise ValueError(
            f"{_short(text)} is not a duration: write e.g. '30 days', '8 hours' or 'P30D'"
        )
    return value


# --------------------------------------------------------------------------------------
# The scalar fields of each kind, named as in Microsoft Graph (camelCase)
# --------------------------------------------------------------------------------------


def _camel(name):
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class Field:
    """One scalar value of a node: its key in the document and its model field."""

    key: str
    attr: str
    kind: str  # str, bool, int, choice, duration, datetime, date
    default: object
    null: bool
    choices: tuple = ()
    always: bool = False  # written even when it has its default

    def from_model(self, obj):
        value = getattr(obj, self.attr)
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
        return value

    def to_document(self, value):
        if value is None:
            return None
        if self.kind == "duration":
            return duration_words(value)
        if self.kind == "datetime":
            return value.isoformat().replace("+00:00", "Z")
        if self.kind == "date":
            return value.isoformat()
        return value

    def parse(self, value, path):
        if value is None:
            if self.null:
                return None
            raise ConfigError(path, "a value is required here")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(path, f"expected true or false, got {_short(value)}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(path, f"expected a whole number, got {_short(value)}")
            return value
        if self.kind == "duration":
            try:
                value = parse_duration_text(value)
            except ValueError as exc:
                raise ConfigError(path, str(exc)) from None
            if value < timedelta(0):
                raise ConfigError(path, "a duration cannot be negative")
            return value
        if self.kind == "datetime":
            try:
                parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
            except ValueError:  # well formed but impossible: 2027-02-30T10:00:00Z
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise ConfigError(
                    path,
                    f"expected a date and time with a time zone, e.g. 2027-01-31T18:00:00Z, "
                    f"got {_short(value)}",
                )
            return parsed.astimezone(UTC)
        if self.kind == "date":
            try:
                parsed = value if isinstance(value, date) else parse_date(str(value))
            except ValueError:  # well formed but impossible: 2027-02-30
                parsed = None
            if parsed is None or isinstance(parsed, datetime):
                raise ConfigError(path, f"expected a date such as 2027-01-01, got {_short(value)}")
            return parsed
        if not isinstance(value, str):
            raise ConfigError(path, f"expected text, got {_short(value)}")
        if "\x00" in value:
            raise ConfigError(path, "a text cannot hold a NUL character (\\0)")
        if self.kind == "choice" and value not in self.choices:
            raise ConfigError(path, f"{_short(value)} is not one of: {', '.join(self.choices)}")
        return value


def _fields(model, names, always=(), keys=None):
    specs = []
    for name in names:
        f = model._meta.get_field(name)
        if isinstance(f, models.BooleanField):
            kind = "bool"
        elif isinstance(f, models.DurationField):
            kind = "duration"
        elif isinstance(f, models.DateTimeField):
            kind = "datetime"
        elif isinstance(f, models.DateField):
            kind = "date"
        elif isinstance(f, models.IntegerField):
            kind = "int"
        else:
            kind = "choice" if f.choices else "str"
        specs.append(
            Field(
                key=(keys or {}).get(name, _camel(name)),
                attr=name,
                kind=kind,
                default=f.get_default(),
                null=f.null,
                choices=tuple(value for value, _label in f.choices or ()),
                always=name in always,
            )
        )
    return specs


def _own_fields(model, skip):
    skip = {"id", "created", "modified", *skip}
    return [f.name for f in model._meta.concrete_fields if f.name not in skip]


NAME = {"display_name": "name"}
CATALOG_FIELDS = _fields(Catalog, ["description", "state", "is_externally_visible"])
RESOURCE_FIELDS = _fields(Resource, ["display_name", "description", "drift_mode"], keys=NAME)
PACKAGE_FIELDS = _fields(AccessPackage, ["description", "is_hidden"])
# Graph spells it endDateTime (inside expiration); _camel would write expirationEndDatetime.
POLICY_FIELDS = _fields(
    AssignmentPolicy,
    _own_fields(AssignmentPolicy, ["access_package"]),
    keys={"expiration_end_datetime": "expirationEndDateTime"},
)
POLICY_FIELDS = [f for f in POLICY_FIELDS if f.attr != "display_name"]
STAGE_FIELDS = _fields(ApprovalStage, _own_fields(ApprovalStage, ["policy", "sequence"]))
QUESTION_FIELDS = _fields(Question, _own_fields(Question, ["policy", "sequence"]), always=("text",))
CHOICE_FIELDS = _fields(QuestionChoice, ["text"], always=("text",))
LOCALIZATION_FIELDS = _fields(QuestionLocalization, ["text"], always=("text",))

# Subject sets by the list that holds them: (model, purpose).
POLICY_SUBJECTS = {
    "allowedTargets": PolicySubjectSet.Purpose.ALLOWED_TARGET,
    "onBehalfRequestors": PolicySubjectSet.Purpose.ON_BEHALF_REQUESTOR,
    "primaryReviewers": PolicySubjectSet.Purpose.PRIMARY_REVIEWER,
    "fallbackReviewers": PolicySubjectSet.Purpose.FALLBACK_REVIEWER,
}
STAGE_APPROVERS = {
    "primaryApprovers": StageApproverSet.Purpose.PRIMARY,
    "fallbackPrimaryApprovers": StageApproverSet.Purpose.FALLBACK_PRIMARY,
    "escalationApprovers": StageApproverSet.Purpose.ESCALATION,
    "fallbackEscalationApprovers": StageApproverSet.Purpose.FALLBACK_ESCALATION,
}
MANAGER_TYPES = {SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER}


@dataclass
class Node:
    """One configuration object: its key, values, keyed children and unkeyed sets."""

    kind: str
    key: tuple
    label: str  # its name in a plan, after its kind: "Engineering / Production access"
    path: str = ""
    values: dict = field(default_factory=dict)
    children: dict = field(default_factory=dict)  # list key -> {child key: Node}
    sets: dict = field(default_factory=dict)  # list key -> {member: rows (database) | path}
    obj: object = None
    parent: "Node | None" = field(default=None, repr=False)


@dataclass
class Tree:
    catalogs: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)

    def collections(self):
        return {"catalogs": self.catalogs, "resources": self.resources, "packages": self.packages}

    def link(self):
        """Give every node below a package its parent."""

        def walk(node):
            for children in node.children.values():
                for child in children.values():
                    child.parent = node
                    walk(child)

        for node in self.packages.values():
            walk(node)
        return self


# --------------------------------------------------------------------------------------
# Members of sets, canonical: tuples that compare equal when they mean the same
# --------------------------------------------------------------------------------------


def subject_member(subject_type, user="", group="", organization="", level=None, rule=""):
    # A manager's level stays as stored: None (the direct manager, as the demo seeds it) and
    # 1 (the same, as the admin saves it) are written differently so a round trip is exact.
    level = level if subject_type in MANAGER_TYPES else None
    return ("subject", subject_type, user or "", group or "", organization or "", level, rule)


def subject_of_row(row):
    return subject_member(
        row.subject_type,
        row.user.email if row.user_id else "",
        row.group.display_name if row.group_id else "",
        row.connected_organization.display_name if row.connected_organization_id else "",
        row.manager_level,
        getattr(row, "membership_rule", ""),
    )


def subject_document(member):
    _s, subject_type, user, group, organization, level, rule = member
    shorthand = {
        SubjectType.SINGLE_USER: ("user", user),
        SubjectType.GROUP_MEMBERS: ("group", group),
        SubjectType.CONNECTED_ORGANIZATION_MEMBERS: ("connectedOrganization", organization),
        SubjectType.ATTRIBUTE_RULE_MEMBERS: ("rule", rule),
    }
    if subject_type in shorthand:
        key, value = shorthand[subject_type]
        return {key: value}
    doc = {"type": subject_type}
    if level is not None:
        doc["managerLevel"] = level
    return doc


def target_of_resource(resource):
    """A resource's key within its catalog: what it is, by name."""
    if resource.origin_system == OriginSystem.GROUP and resource.group_id is None:
        return ("system", resource.connected_system.name, resource.origin_id)
    if resource.origin_system == OriginSystem.GROUP:
        return ("group", resource.group.display_name)
    if resource.origin_system == OriginSystem.APPLICATION:
        return ("application", resource.application.display_name)
    if resource.origin_system == OriginSystem.SITE:
        return ("site", resource.site.url)
    if resource.origin_system == OriginSystem.DIRECTORY_ROLE:
        return (
            "directoryRole",
            resource.role_catalog.display_name if resource.role_catalog_id else None,
        )
    return ("originId", resource.origin_system, resource.origin_id)


def target_document(target):
    if target[0] == "system":
        return {"system": target[1], "originId": target[2]}
    return {target[0]: target[1]}


def role_key(resource_origin_system, origin_id, display_name):
    """A resource role by what people call it: an app role by its name, others by their id
    (Member, Owner, Visitor, accessPackageManager), which is the same in every database."""
    if resource_origin_system == OriginSystem.APPLICATION and origin_id != AppRole.DEFAULT_ACCESS:
        return display_name
    return origin_id


def package_role_member(scope_role):
    resource = scope_role.resource
    return (
        "role",
        target_of_resource(resource),
        role_key(resource.origin_system, scope_role.origin_id, scope_role.display_name),
    )


def member_document(set_key, member):
    if member[0] == "subject":
        return subject_document(member)
    if set_key == "roles" and member[0] == "role":
        return {**target_document(member[1]), "role": member[2]}
    if member[0] == "catalogRole":
        return {"role": member[1], "user": member[2]}
    if member[0] == "package":
        return {"catalog": member[1], "name": member[2]}
    if member[0] == "group":
        return member[1]
    raise AssertionError(member)


def _member_sort(member):
    return tuple("" if part is None else str(part) for part in member)


# --------------------------------------------------------------------------------------
# Reading the database
# --------------------------------------------------------------------------------------


def _values(specs, obj):
    return {spec.key: spec.from_model(obj) for spec in specs}


def _add_row(node, set_key, member, row):
    node.sets.setdefault(set_key, {}).setdefault(member, []).append(row)


def _put(collection, node):
    """Add a database row's node; two rows with the same key cannot be told apart in a
    document (two questions 1 of one policy, say), so the export refuses them."""
    if node.key in collection:
        raise ConfigError(
            "", f"{node.kind} {node.label} exists twice; rename or renumber one of them first"
        )
    collection[node.key] = node


def package_label(catalog, name):
    return f"{catalog} / {name}"


def read_database(catalog_names=None):
    """The configuration of the catalogs ``catalog_names`` (all when None) as a Tree, each
    node holding its row. A fixed number of queries, whatever the size."""
    tree = Tree()
    catalogs = Catalog.objects.order_by("display_name")
    if catalog_names is not None:
        catalogs = catalogs.filter(display_name__in=catalog_names)
    catalogs = list(catalogs)
    ids = [c.pk for c in catalogs]
    for catalog in catalogs:
        node = Node("catalog", (catalog.display_name,), catalog.display_name)
        node.values = _values(CATALOG_FIELDS, catalog)
        node.obj = catalog
        node.sets["roles"] = {}
        _put(tree.catalogs, node)
    by_catalog = {c.pk: tree.catalogs[(c.display_name,)] for c in catalogs}
    for row in RoleAssignment.objects.filter(
        catalog_id__in=ids, source=RoleAssignment.Source.DIRECT
    ).select_related("principal", "catalog"):
        member = ("catalogRole", row.role, row.principal.email)
        _add_row(by_catalog[row.catalog_id], "roles", member, row)

    resources = Resource.objects.filter(catalog_id__in=ids).select_related(
        "catalog", "group", "application", "site", "role_catalog", "connected_system"
    )
    for resource in resources:
        key = (resource.catalog.display_name, target_of_resource(resource))
        node = Node("resource", key, resource_label(key))
        node.values = _values(RESOURCE_FIELDS, resource)
        node.obj = resource
        _put(tree.resources, node)

    packages = (
        AccessPackage.objects.filter(catalog_id__in=ids)
        .select_related("catalog")
        .prefetch_related("incompatible_access_packages__catalog", "incompatible_groups")
    )
    by_package = {}
    for package in packages:
        key = (package.catalog.display_name, package.display_name)
        node = Node("package", key, package_label(*key))
        node.values = _values(PACKAGE_FIELDS, package)
        node.obj = package
        node.children["policies"] = {}
        for set_key in ("roles", "incompatibleAccessPackages", "incompatibleGroups"):
            node.sets[set_key] = {}
        for other in package.incompatible_access_packages.all():
            member = ("package", other.catalog.display_name, other.display_name)
            _add_row(node, "incompatibleAccessPackages", member, other)
        for group in package.incompatible_groups.all():
            _add_row(node, "incompatibleGroups", ("group", group.display_name), group)
        _put(tree.packages, node)
        by_package[package.pk] = node
    scopes = ResourceRoleScope.objects.filter(access_package__catalog_id__in=ids).select_related(
        "role__resource__group",
        "role__resource__application",
        "role__resource__site",
        "role__resource__role_catalog",
        "role__resource__connected_system",
    )
    for scope in scopes:
        _add_row(
            by_package[scope.access_package_id], "roles", package_role_member(scope.role), scope
        )

    by_policy = {}
    for policy in AssignmentPolicy.objects.filter(access_package__catalog_id__in=ids):
        parent = by_package[policy.access_package_id]
        node = Node("policy", (policy.display_name,), f"{parent.label} / {policy.display_name}")
        node.values = _values(POLICY_FIELDS, policy)
        node.obj = policy
        node.children = {"stages": {}, "questions": {}}
        node.sets = {key: {} for key in POLICY_SUBJECTS}
        _put(parent.children["policies"], node)
        by_policy[policy.pk] = node
    purposes = {purpose: key for key, purpose in POLICY_SUBJECTS.items()}
    for row in PolicySubjectSet.objects.filter(
        policy__access_package__catalog_id__in=ids
    ).select_related("user", "group", "connected_organization"):
        _add_row(by_policy[row.policy_id], purposes[row.purpose], subject_of_row(row), row)

    by_stage = {}
    for stage in ApprovalStage.objects.filter(policy__access_package__catalog_id__in=ids):
        parent = by_policy[stage.policy_id]
        node = Node("stage", (stage.sequence,), f"{parent.label} / {stage.sequence}")
        node.values = _values(STAGE_FIELDS, stage)
        node.obj = stage
        node.sets = {key: {} for key in STAGE_APPROVERS}
        _put(parent.children["stages"], node)
        by_stage[stage.pk] = node
    purposes = {purpose: key for key, purpose in STAGE_APPROVERS.items()}
    for row in StageApproverSet.objects.filter(
        stage__policy__access_package__catalog_id__in=ids
    ).select_related("user", "group", "connected_organization"):
        _add_row(by_stage[row.stage_id], purposes[row.purpose], subject_of_row(row), row)

    by_question = {}
    for question in Question.objects.filter(policy__access_package__catalog_id__in=ids):
        parent = by_policy[question.policy_id]
        node = Node("question", (question.sequence,), f"{parent.label} / {question.sequence}")
        node.values = _values(QUESTION_FIELDS, question)
        node.obj = question
        node.children = {"choices": {}, "localizations": {}}
        _put(parent.children["questions"], node)
        by_question[question.pk] = node
    for choice in QuestionChoice.objects.filter(
        question__policy__access_package__catalog_id__in=ids
    ):
        parent = by_question[choice.question_id]
        node = Node("choice", (choice.actual_value,), f"{parent.label} / {choice.actual_value}")
        node.values = {**_values(CHOICE_FIELDS, choice), "sequence": choice.sequence}
        node.obj = choice
        _put(parent.children["choices"], node)
    for loc in QuestionLocalization.objects.filter(
        question__policy__access_package__catalog_id__in=ids
    ):
        parent = by_question[loc.question_id]
        node = Node("localization", (loc.language_code,), f"{parent.label} / {loc.language_code}")
        node.values = _values(LOCALIZATION_FIELDS, loc)
        node.obj = loc
        _put(parent.children["localizations"], node)
    return tree.link()


def resource_label(key):
    catalog, target = key
    what = " ".join(str(part) for part in target[1:]) if target[1] is not None else "all catalogs"
    return f"{catalog}: {target[0]} {what}"


# --------------------------------------------------------------------------------------
# Writing a document
# --------------------------------------------------------------------------------------


def _scalars(specs, values, defaults=None):
    doc = {}
    for spec in specs:
        value = values[spec.key]
        default = (defaults or {}).get(spec.key, spec.default)
        if spec.always or value != default:
            doc[spec.key] = spec.to_document(value)
    return doc


def _sets(node, keys):
    doc = {}
    for key in keys:
        members = sorted(node.sets.get(key, {}), key=_member_sort)
        if members:
            doc[key] = [member_document(key, m) for m in members]
    return doc


def _sorted(nodes):
    return [nodes[key] for key in sorted(nodes, key=_member_sort)]


def write_document(tree):
    """The tree as a document (dicts and lists) whose keys and order depend only on it."""
    doc = {"version": VERSION, "catalogs": [], "resources": [], "packages": []}
    for node in _sorted(tree.catalogs):
        doc["catalogs"].append(
            {"name": node.key[0], **_scalars(CATALOG_FIELDS, node.values), **_sets(node, ["roles"])}
        )
    for node in _sorted(tree.resources):
        catalog, target = node.key
        defaults = {"name": default_resource_name(target)}
        doc["resources"].append(
            {
                "catalog": catalog,
                **target_document(target),
                **_scalars(RESOURCE_FIELDS, node.values, defaults),
            }
        )
    for node in _sorted(tree.packages):
        package = {"catalog": node.key[0], "name": node.key[1]}
        package.update(_scalars(PACKAGE_FIELDS, node.values))
        package.update(_sets(node, ["roles", "incompatibleAccessPackages", "incompatibleGroups"]))
        policies = [_policy_document(p) for p in _sorted(node.children["policies"])]
        if policies:
            package["policies"] = policies
        doc["packages"].append(package)
    return doc


def _policy_document(node):
    doc = {"name": node.key[0], **_scalars(POLICY_FIELDS, node.values)}
    doc.update(_sets(node, POLICY_SUBJECTS))
    stages = []
    for stage in _sorted(node.children["stages"]):
        stages.append(
            {
                "sequence": stage.key[0],
                **_scalars(STAGE_FIELDS, stage.values),
                **_sets(stage, STAGE_APPROVERS),
            }
        )
    if stages:
        doc["stages"] = stages
    questions = []
    for question in _sorted(node.children["questions"]):
        q = {"sequence": question.key[0], **_scalars(QUESTION_FIELDS, question.values)}
        choices = sorted(
            question.children["choices"].values(), key=lambda c: (c.values["sequence"], c.key)
        )
        if choices:
            q["choices"] = [{"actualValue": c.key[0], "text": c.values["text"]} for c in choices]
        locs = _sorted(question.children["localizations"])
        if locs:
            q["localizations"] = [
                {"languageCode": n.key[0], "text": n.values["text"]} for n in locs
            ]
        questions.append(q)
    if questions:
        doc["questions"] = questions
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, long text folded at the same places."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump_yaml(doc):
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def default_resource_name(target):
    """The name a resource gets when the file gives none (as ``resource_default_name``)."""
    if target[0] == "directoryRole":
        return f"Admin roles: {target[1] if target[1] is not None else 'all catalogs'}"
    if target[0] == "system":
        return target[2]
    if target[0] == "site":
        site = Site.objects.filter(url=target[1]).first()
        return site.display_name if site else target[1]
    return target[1]


# --------------------------------------------------------------------------------------
# Reading a document
# --------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A mapping that names the same key twice is refused, not silently overwritten.

    Anchors and aliases (&name, *name) are refused too: the export never writes them, and
    a few nested aliases make a small file expand into an enormous document."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ConfigError(
                f"line {event.start_mark.line + 1}",
                "anchors and aliases (&name, *name) are not read; write the value out",
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}", f"the key {_short(key)} is given twice"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text):
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:  # a well-formed but impossible value, e.g. 2027-02-30
        raise ConfigError("", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError("", "not valid YAML: nested too deeply") from None


def _mapping(value, path, allowed, required=()):
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping (key: value), got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ConfigError(
                f"{path}.{key}", f"unknown key; expected one of: {', '.join(allowed)}"
            )
    for key in required:
        if key not in value:
            raise ConfigError(path, f"{key} is required")
    return value


def _list(value, path):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list")
    return value


def _text(value, path):
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "expected a non-empty text")
    if "\x00" in value:
        raise ConfigError(path, "a text cannot hold a NUL character (\\0)")
    return value


def _parse_values(specs, data, path, defaults=None):
    values = {}
    for spec in specs:
        default = (defaults or {}).get(spec.key, spec.default)
        values[spec.key] = (
            spec.parse(data[spec.key], f"{path}.{spec.key}") if spec.key in data else default
        )
    return values


class _Directory:
    """Looks up the people, groups and organizations a document names, once each."""

    def __init__(self):
        self.cache = {}

    def get(self, model, lookup, value, path, what):
        value = _text(value, path)
        key = (model, lookup, value)
        if key not in self.cache:
            self.cache[key] = model._default_manager.filter(**{lookup: value}).first()
        if self.cache[key] is None:
            raise ConfigError(path, f"no {what} {value[:200]}")
        return self.cache[key]


SUBJECT_KEYS = ["type", "user", "group", "connectedOrganization", "managerLevel", "rule"]
TARGET_KEYS = ["group", "application", "site", "directoryRole", "system", "originId"]


class DocumentReader:
    """Builds the desired Tree from a parsed document, checking every value and reference."""

    def __init__(self):
        self.directory = _Directory()

    def read(self, doc):
        doc = _mapping(doc or {}, "", ["version", "catalogs", "resources", "packages"])
        if doc.get("version", VERSION) != VERSION:
            raise ConfigError("version", f"this product reads version {VERSION}")
        tree = Tree()
        for i, data in enumerate(_list(doc.get("catalogs"), "catalogs")):
            self._catalog(tree, data, f"catalogs[{i}]")
        for i, data in enumerate(_list(doc.get("resources"), "resources")):
            self._resource(tree, data, f"resources[{i}]")
        packages = list(enumerate(_list(doc.get("packages"), "packages")))
        for i, data in packages:
            self._package(tree, data, f"packages[{i}]")
        # Incompatible packages may name packages that come later in the file.
        for i, data in packages:
            node = tree.packages[(data["catalog"], data["name"])]
            for j, ref in enumerate(_list(data.get("incompatibleAccessPackages"), "")):
                path = f"packages[{i}].incompatibleAccessPackages[{j}]"
                ref = _mapping(ref, path, ["catalog", "name"], ["catalog", "name"])
                key = (
                    _text(ref["catalog"], f"{path}.catalog"),
                    _text(ref["name"], f"{path}.name"),
                )
                if (
                    key not in tree.packages
                    and not AccessPackage.objects.filter(
                        catalog__display_name=key[0], display_name=key[1]
                    ).exists()
                ):
                    raise ConfigError(path, f"no package {package_label(*key)}")
                node.sets["incompatibleAccessPackages"][("package", *key)] = path
        return tree

    def _catalog(self, tree, data, path):
        specs = CATALOG_FIELDS
        data = _mapping(data, path, ["name", *[s.key for s in specs], "roles"], ["name"])
        name = _text(data["name"], f"{path}.name")
        if (name,) in tree.catalogs:
            raise ConfigError(f"{path}.name", f"a second catalog named {name}")
        node = Node("catalog", (name,), name, path)
        node.values = _parse_values(specs, data, path)
        node.sets["roles"] = {}
        for j, role in enumerate(_list(data.get("roles"), f"{path}.roles")):
            rpath = f"{path}.roles[{j}]"
            role = _mapping(role, rpath, ["role", "user"], ["role", "user"])
            if _text(role["role"], f"{rpath}.role") not in CATALOG_SCOPED_ROLES:
                raise ConfigError(
                    f"{rpath}.role",
                    f"{_short(role['role'])} is not one of: {', '.join(CATALOG_SCOPED_ROLES)}",
                )
            user = self.directory.get(User, "email__iexact", role["user"], f"{rpath}.user", "user")
            if ("catalogRole", role["role"], user.email) in node.sets["roles"]:
                raise ConfigError(rpath, "given twice")
            node.sets["roles"][("catalogRole", role["role"], user.email)] = rpath
        tree.catalogs[node.key] = node

    def _catalog_ref(self, tree, name, path):
        name = _text(name, path)
        if (name,) not in tree.catalogs:
            raise ConfigError(path, f"the catalog {_short(name)} is not among the file's catalogs")
        return name

    def _target(self, tree, data, path):
        given = [
            k for k in ("group", "application", "site", "directoryRole", "system") if k in data
        ]
        if len(given) != 1:
            raise ConfigError(
                path, "name exactly one of group, application, site, directoryRole or system"
            )
        kind = given[0]
        value = data[kind]
        if kind == "system":
            system = self.directory.get(
                ConnectedSystem, "name", value, f"{path}.system", "connected system"
            )
            if system.is_builtin:
                raise ConfigError(
                    f"{path}.system", "name the group itself for the built-in directory"
                )
            return ("system", system.name, _text(data.get("originId"), f"{path}.originId"))
        if "originId" in data:
            raise ConfigError(f"{path}.originId", "only a group of a connected system has one")
        if kind == "directoryRole":
            # The roles of a catalog the file does not manage may be handed out too.
            if value is not None:
                value = _text(value, f"{path}.directoryRole")
            exists = value is None or Catalog.objects.filter(display_name=value).exists()
            if not exists:
                self._catalog_ref(tree, value, f"{path}.directoryRole")
            return ("directoryRole", value)
        model, lookup, what = {
            "group": (Group, "display_name", "group"),
            "application": (Application, "display_name", "application"),
            "site": (Site, "url", "site"),
        }[kind]
        obj = self.directory.get(model, lookup, value, f"{path}.{kind}", what)
        return (kind, getattr(obj, lookup))

    def _resource(self, tree, data, path):
        specs = RESOURCE_FIELDS
        data = _mapping(data, path, ["catalog", *TARGET_KEYS, *[s.key for s in specs]], ["catalog"])
        catalog = self._catalog_ref(tree, data["catalog"], f"{path}.catalog")
        target = self._target(tree, data, path)
        key = (catalog, target)
        if key in tree.resources:
            raise ConfigError(path, f"the resource {resource_label(key)} is given twice")
        node = Node("resource", key, resource_label(key), path)
        node.values = _parse_values(specs, data, path, {"name": default_resource_name(target)})
        tree.resources[key] = node

    def _offered_roles(self, target):
        """The role keys a resource offers (as it would be added now)."""
        kind = target[0]
        probe = Resource(
            origin_system={
                "group": OriginSystem.GROUP,
                "system": OriginSystem.GROUP,
                "application": OriginSystem.APPLICATION,
                "site": OriginSystem.SITE,
                "directoryRole": OriginSystem.DIRECTORY_ROLE,
            }[kind]
        )
        if kind == "group":
            probe.group = Group.objects.get(display_name=target[1])
        elif kind == "system":
            probe.connected_system = ConnectedSystem.objects.get(name=target[1])
        elif kind == "application":
            probe.application = Application.objects.get(display_name=target[1])
        elif kind == "site":
            probe.site = Site.objects.get(url=target[1])
        elif kind == "directoryRole" and target[1] is not None:
            probe.role_catalog_id = 0  # any catalog: its directory role offers the same roles
        return {
            role_key(probe.origin_system, origin_id, name)
            for origin_id, name in resource_roles_for(probe)
        }

    def _package(self, tree, data, path):
        specs = PACKAGE_FIELDS
        allowed = [
            "catalog",
            "name",
            *[s.key for s in specs],
            "roles",
            "incompatibleAccessPackages",
            "incompatibleGroups",
            "policies",
        ]
        data = _mapping(data, path, allowed, ["catalog", "name"])
        catalog = self._catalog_ref(tree, data["catalog"], f"{path}.catalog")
        name = _text(data["name"], f"{path}.name")
        key = (catalog, name)
        if key in tree.packages:
            raise ConfigError(f"{path}.name", f"a second package {package_label(*key)}")
        node = Node("package", key, package_label(*key), path)
        node.values = _parse_values(specs, data, path)
        node.sets = {"roles": {}, "incompatibleAccessPackages": {}, "incompatibleGroups": {}}
        node.children["policies"] = {}
        offered = {}
        for j, role in enumerate(_list(data.get("roles"), f"{path}.roles")):
            rpath = f"{path}.roles[{j}]"
            role = _mapping(role, rpath, [*TARGET_KEYS, "role"], ["role"])
            _text(role["role"], f"{rpath}.role")
            target = self._target(tree, role, rpath)
            if (catalog, target) not in tree.resources:
                raise ConfigError(
                    rpath,
                    f"the resource {resource_label((catalog, target))} is not among the file's "
                    "resources",
                )
            if target not in offered:
                offered[target] = self._offered_roles(target)
            if role["role"] not in offered[target]:
                raise ConfigError(
                    f"{rpath}.role",
                    f"{_short(role['role'])} is not a role of it; its roles: "
                    f"{', '.join(sorted(offered[target]))}",
                )
            if ("role", target, role["role"]) in node.sets["roles"]:
                raise ConfigError(rpath, "given twice")
            node.sets["roles"][("role", target, role["role"])] = rpath
        for j, name_ in enumerate(
            _list(data.get("incompatibleGroups"), f"{path}.incompatibleGroups")
        ):
            gpath = f"{path}.incompatibleGroups[{j}]"
            group = self.directory.get(Group, "display_name", name_, gpath, "group")
            node.sets["incompatibleGroups"][("group", group.display_name)] = gpath
        for j, policy in enumerate(_list(data.get("policies"), f"{path}.policies")):
            self._policy(node, policy, f"{path}.policies[{j}]")
        tree.packages[key] = node

    def _subjects(self, node, data, path, lists):
        for set_key in lists:
            node.sets[set_key] = {}
            for j, subject in enumerate(_list(data.get(set_key), f"{path}.{set_key}")):
                spath = f"{path}.{set_key}[{j}]"
                member = self._subject(subject, spath)
                if member in node.sets[set_key]:
                    raise ConfigError(spath, "given twice")
                node.sets[set_key][member] = spath

    def _subject(self, data, path):
        data = _mapping(data, path, SUBJECT_KEYS)
        implied = {
            "user": SubjectType.SINGLE_USER,
            "group": SubjectType.GROUP_MEMBERS,
            "connectedOrganization": SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
            "rule": SubjectType.ATTRIBUTE_RULE_MEMBERS,
        }
        subject_type = data.get("type") or next((v for k, v in implied.items() if k in data), None)
        if subject_type not in SubjectType.values:
            raise ConfigError(
                f"{path}.type",
                f"{_short(subject_type)} is not one of: {', '.join(SubjectType.values)}",
            )
        for key, kind in implied.items():
            if key in data and kind != subject_type:
                raise ConfigError(f"{path}.{key}", f"not used by {subject_type}")
            if kind == subject_type and key not in data:
                raise ConfigError(path, f"{subject_type} needs {key}")
        user = group = organization = ""
        if "user" in data:
            user = self.directory.get(
                User, "email__iexact", data["user"], f"{path}.user", "user"
            ).email
        if "group" in data:
            group = self.directory.get(
                Group, "display_name", data["group"], f"{path}.group", "group"
            )
            group = group.display_name
        if "connectedOrganization" in data:
            organization = self.directory.get(
                ConnectedOrganization,
                "display_name",
                data["connectedOrganization"],
                f"{path}.connectedOrganization",
                "connected organization",
            ).display_name
        level = data.get("managerLevel")
        if level is not None and (subject_type not in MANAGER_TYPES or level not in (1, 2)):
            raise ConfigError(f"{path}.managerLevel", "1 or 2, for a manager only")
        rule = data.get("rule", "")
        if rule:
            rule = _text(rule, f"{path}.rule").strip()
        return subject_member(subject_type, user, group, organization, level, rule)

    def _policy(self, package, data, path):
        specs = POLICY_FIELDS
        allowed = ["name", *[s.key for s in specs], *POLICY_SUBJECTS, "stages", "questions"]
        data = _mapping(data, path, allowed, ["name"])
        name = _text(data["name"], f"{path}.name")
        if (name,) in package.children["policies"]:
            raise ConfigError(f"{path}.name", f"a second policy named {name} in this package")
        node = Node("policy", (name,), f"{package.label} / {name}", path)
        node.values = _parse_values(specs, data, path)
        node.children = {"stages": {}, "questions": {}}
        self._subjects(node, data, path, POLICY_SUBJECTS)
        for j, stage in enumerate(_list(data.get("stages"), f"{path}.stages")):
            spath = f"{path}.stages[{j}]"
            stage = _mapping(
                stage,
                spath,
                ["sequence", *[s.key for s in STAGE_FIELDS], *STAGE_APPROVERS],
                ["sequence"],
            )
            sequence = Field("sequence", "sequence", "int", None, False).parse(
                stage["sequence"], f"{spath}.sequence"
            )
            if (sequence,) in node.children["stages"]:
                raise ConfigError(f"{spath}.sequence", f"a second stage {sequence}")
            snode = Node("stage", (sequence,), f"{node.label} / {sequence}", spath)
            snode.values = _parse_values(STAGE_FIELDS, stage, spath)
            self._subjects(snode, stage, spath, STAGE_APPROVERS)
            node.children["stages"][snode.key] = snode
        for j, question in enumerate(_list(data.get("questions"), f"{path}.questions")):
            self._question(node, question, f"{path}.questions[{j}]")
        package.children["policies"][node.key] = node

    def _question(self, policy, data, path):
        specs = QUESTION_FIELDS
        allowed = ["sequence", *[s.key for s in specs], "choices", "localizations"]
        data = _mapping(data, path, allowed, ["sequence", "text"])
        sequence = Field("sequence", "sequence", "int", None, False).parse(
            data["sequence"], f"{path}.sequence"
        )
        if (sequence,) in policy.children["questions"]:
            raise ConfigError(f"{path}.sequence", f"a second question {sequence}")
        node = Node("question", (sequence,), f"{policy.label} / {sequence}", path)
        node.values = _parse_values(specs, data, path)
        node.children = {"choices": {}, "localizations": {}}
        for j, choice in enumerate(_list(data.get("choices"), f"{path}.choices")):
            cpath = f"{path}.choices[{j}]"
            choice = _mapping(choice, cpath, ["actualValue", "text"], ["actualValue", "text"])
            value = _text(choice["actualValue"], f"{cpath}.actualValue")
            if (value,) in node.children["choices"]:
                raise ConfigError(f"{cpath}.actualValue", f"a second choice {value!r}")
            cnode = Node("choice", (value,), f"{node.label} / {value}", cpath)
            cnode.values = {
                **_parse_values(CHOICE_FIELDS, choice, cpath),
                "sequence": j + 1,
            }
            node.children["choices"][cnode.key] = cnode
        for j, loc in enumerate(_list(data.get("localizations"), f"{path}.localizations")):
            lpath = f"{path}.localizations[{j}]"
            loc = _mapping(loc, lpath, ["languageCode", "text"], ["languageCode", "text"])
            code = _text(loc["languageCode"], f"{lpath}.languageCode")
            if (code,) in node.children["localizations"]:
                raise ConfigError(f"{lpath}.languageCode", f"a second text in {code}")
            lnode = Node("localization", (code,), f"{node.label} / {code}", lpath)
            lnode.values = _parse_values(LOCALIZATION_FIELDS, loc, lpath)
            node.children["localizations"][lnode.key] = lnode
        policy.children["questions"][node.key] = node


def read_document(text):
    """The desired Tree of a YAML text; ConfigError names the first problem's place."""
    return DocumentReader().read(load_yaml(text)).link()
