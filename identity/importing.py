"""Directory import: people (and optionally groups) read from an LDAP server or Active
Directory, created, changed, disabled and enabled through the identity services.

A run has three steps, like delivery: **claim** the import (a lease on its row, committed, so
two runs of one import never overlap), **read** the directory with no transaction open
(the LDAP connector's pooled, bound connection and its paged search), then **apply** the
differences in batches of ``BATCH_SIZE`` people, each batch one transaction, every change
through ``identity.services`` with ``Source(kind="ldap", name=<import>)`` so that it is
audited with the system that caused it and has the same consequences as any other door (a
person gone from the directory is disabled through the leaver path). A run that finds
nothing to change writes nothing: no user, no link, no audit event.

Each directory entry is known by its key attribute (entryUUID, objectGUID), kept with the
person it became in ``DirectoryImportLink``: a renamed entry or a changed address updates the
same person, and "gone" means exactly the people this import linked and no longer finds.
Managers are given by DN and resolved after every person of the run exists.
"""

import re
import time
import uuid
from collections import Counter, defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.audit import audit_bulk, audit_event
from entitlements.connectors.base import ConnectorError
from entitlements.connectors.registry import connector_for_system
from entitlements.errors import DomainError, InvalidRequest, StateConflict
from entitlements.queue import enqueue_named

from . import services
from .models.importing import DirectoryImport, DirectoryImportLink

BATCH_SIZE = 1000
LEASE = timedelta(hours=2)  # longer than any run; a crashed run's claim ends with it
EXAMPLES = 5  # examples kept per kind of change in a run's report
RUN_TASK = "identity.tasks.run_directory_import"


@dataclass
class Person:
    """One person as the directory has them, mapped to User field names."""

    key: str
    dn: str
    values: dict
    manager_dn: str = ""
    enabled: bool = True

    @property
    def label(self):
        return f"{self.values.get('display_name') or self.dn} <{self.values.get('email', '')}>"


@dataclass
class DirectoryGroup:
    """One group as the directory has it: its key, name, description and member DNs."""

    key: str
    dn: str
    name: str
    description: str
    member_dns: set


@dataclass
class Snapshot:
    """What one read of the directory found; ``skipped`` names entries that cannot be people."""

    people: list
    groups: list
    skipped: list = field(default_factory=list)


@dataclass
class Report:
    """What a run changed (or, in a dry run, would change), kept on the import row."""

    name: str
    dry_run: bool = False
    read: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=lambda: defaultdict(list))
    errors: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    KINDS = (
        "created",
        "linked",
        "updated",
        "enabled",
        "disabled",
        "unchanged",
        "groups_created",
        "groups_updated",
        "members_added",
        "members_removed",
    )

    def add(self, kind, example="", n=1):
        self.counts[kind] += n
        if example and len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)

    def error(self, message):
        self.counts["errors"] += 1
        if len(self.errors) < 20:
            self.errors.append(message)

    @property
    def changed(self):
        return any(self.counts[k] for k in self.KINDS if k != "unchanged")

    def as_dict(self):
        return {
            "dry_run": self.dry_run,
            "read": self.read,
            "counts": {
                k: self.counts[k]
                for k in (*self.KINDS, "managers_not_found", "groups_not_found", "errors")
            },
            "examples": {k: list(v) for k, v in self.examples.items() if v},
            "errors": list(self.errors),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def summary(self):
        c = self.counts
        text = _(
            "%(name)s%(dry)s: %(read)s people read; %(created)s created, %(linked)s taken "
            "over, %(updated)s updated, "
            "%(enabled)s enabled, %(disabled)s disabled, %(unchanged)s unchanged, "
            "%(errors)s errors"
        ) % {
            "name": self.name,
            "dry": _(" (dry run, nothing written)") if self.dry_run else "",
            "read": f"{self.read:,}",
            **{k: f"{c[k]:,}" for k in ("created", "linked", "updated", "enabled", "disabled")},
            "unchanged": f"{c['unchanged']:,}",
            "errors": f"{c['errors']:,}",
        }
        if any(
            c[k] for k in ("groups_created", "groups_updated", "members_added", "members_removed")
        ):
            text += _(
                "; groups: %(gc)s created, %(gu)s updated, %(ma)s members added, %(mr)s removed"
            ) % {
                "gc": c["groups_created"],
                "gu": c["groups_updated"],
                "ma": c["members_added"],
                "mr": c["members_removed"],
            }
        return text + "."


class _NullBar:
    """A progress bar that shows nothing (runs from the scheduler)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def _no_progress(label, total):
    return _NullBar()


# --------------------------------------------------------------------------------------
# Reading the directory (no transaction open)
# --------------------------------------------------------------------------------------


def _first(values):
    if values is None:
        return ""
    if isinstance(values, (list, tuple)):
        values = values[0] if values else ""
    if isinstance(values, bytes):
        return values.decode("utf-8", errors="replace").strip()
    return str(values).strip()


def _key(value):
    """An entry's key as text: entryUUID as it is; AD's binary objectGUID as its GUID."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, str) and len(value.encode("utf-8", "surrogateescape")) == 16:
        value = value.encode("utf-8", "surrogateescape")  # objectGUID that happened to decode
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes_le=value)) if len(value) == 16 else value.hex()
    return str(value or "").strip().lower()


def _dn(value):
    """A DN compared as servers compare them: case and the spaces around commas ignored."""
    return re.sub(r"\s*,\s*", ",", value.strip().lower())


def _get(attributes, name):
    """An attribute by name, as servers spell names in any case."""
    if name in attributes:
        return attributes[name]
    lower = name.lower()
    for key, value in attributes.items():
        if key.lower() == lower:
            return value
    return None


def _limit(field_name, value):
    return value[: User._meta.get_field(field_name).max_length]


def directory_read(directory_import):
    """Read the people (and groups) of ``directory_import`` from its server: a Snapshot.

    Raises ConnectorError (unreachable, refused bind, bad filter) with a sentence that names
    the system; never called inside a transaction.
    """
    imp = directory_import
    system = imp.system
    if not system.enabled:
        raise ConnectorError(_("%(system)s is disabled.") % {"system": system.name})
    connector = connector_for_system(system)
    if getattr(connector, "config_error", ""):
        raise ConnectorError(connector.config_error)
    mapping = imp.mapping()
    key_attribute = imp.effective_key_attribute()
    base = imp.effective_user_base()
    user_filter = imp.effective_user_filter()
    attributes = sorted({key_attribute, "cn", *mapping.values()})
    entries = connector.search(base, user_filter, attributes)
    disabled_keys = set()
    disabled_filter = imp.effective_disabled_filter()
    if disabled_filter:
        search = f"(&{user_filter}{disabled_filter})"
        for _entry, values in connector.search(base, search, [key_attribute]):
            disabled_keys.add(_key(_get(values, key_attribute)))
    snapshot = Snapshot(people=[], groups=[])
    for dn, values in entries:
        key = _key(_get(values, key_attribute))
        if not key:
            snapshot.skipped.append(
                _("%(dn)s has no %(attribute)s") % {"dn": dn, "attribute": key_attribute}
            )
            continue
        person = {}
        for field_name, attribute in mapping.items():
            if field_name != "manager":
                person[field_name] = _limit(field_name, _first(_get(values, attribute)))
        if "email" in person:
            person["email"] = person["email"].lower()
        if "display_name" in person and not person["display_name"]:
            person["display_name"] = _limit(
                "display_name",
                _first(_get(values, "cn")) or person.get("email", "").split("@")[0],
            )
        manager = _first(_get(values, mapping["manager"])) if "manager" in mapping else ""
        snapshot.people.append(
            Person(
                key=key,
                dn=dn,
                values=person,
                manager_dn=_dn(manager),
                enabled=key not in disabled_keys,
            )
        )
    if imp.import_groups:
        name_attribute = imp.effective_group_name_attribute()
        member_attribute = imp.effective_member_attribute()
        group_attributes = [key_attribute, name_attribute, "description", member_attribute]
        for dn, values in connector.search(
            imp.effective_group_base(), imp.effective_group_filter(), group_attributes
        ):
            key = _key(_get(values, key_attribute))
            name = _first(_get(values, name_attribute))
            if not key or not name:
                snapshot.skipped.append(
                    _("group %(dn)s has no %(attribute)s")
                    % {"dn": dn, "attribute": key_attribute if not key else name_attribute}
                )
                continue
            members = _get(values, member_attribute) or []
            if not isinstance(members, (list, tuple)):
                members = [members]
            snapshot.groups.append(
                DirectoryGroup(
                    key=key,
                    dn=dn,
                    name=name[: Group._meta.get_field("display_name").max_length],
                    description=_first(_get(values, "description")),
                    member_dns={_dn(_first(m)) for m in members} - {_dn(dn)},
                )
            )
    return snapshot


# --------------------------------------------------------------------------------------
# Running an import
# --------------------------------------------------------------------------------------


def directory_import_claim(*, directory_import, now=None):
    """Take the import's lease for one run, in a short transaction; StateConflict when a run
    holds it already."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = DirectoryImport.objects.select_for_update().get(pk=directory_import.pk)
        if locked.lease_expires and locked.lease_expires > now:
            raise StateConflict(
                _("%(name)s is already running (since %(start)s); try again when it ends.")
                % {"name": locked.name, "start": timezone.localtime(locked.last_started)}
            )
        locked.lease_expires = now + LEASE
        locked.last_started = now
        locked.save(update_fields=["lease_expires", "last_started", "modified"])
    directory_import.lease_expires = locked.lease_expires
    directory_import.last_started = now
    return locked


def _record(*, directory_import, report, error, now):
    """The run's outcome on the import row, the lease released, the next run scheduled."""
    finished = timezone.now()
    with transaction.atomic():
        locked = DirectoryImport.objects.select_for_update().get(pk=directory_import.pk)
        locked.lease_expires = None
        locked.last_finished = finished
        locked.last_result = report.as_dict() if report is not None else {}
        locked.last_error = error
        locked.next_run = now + locked.interval
        locked.save(
            update_fields=[
                "lease_expires",
                "last_finished",
                "last_result",
                "last_error",
                "next_run",
                "modified",
            ]
        )
    for name in ("lease_expires", "last_finished", "last_result", "last_error", "next_run"):
        setattr(directory_import, name, getattr(locked, name))


def directory_import_run(*, directory_import, dry_run=False, actor=None, now=None, progress=None):
    """Run ``directory_import`` once: read its directory and bring the people (and groups)
    in line with it. Returns the Report. A dry run reads and compares, and writes nothing.

    Raises StateConflict when another run holds the import, ConnectorError when the server
    cannot be read (recorded on the row as the last error).
    """
    now = now or timezone.now()
    progress = progress or _no_progress
    directory_import_check(directory_import)
    report = Report(name=directory_import.name, dry_run=dry_run)
    if not dry_run:
        directory_import_claim(directory_import=directory_import, now=now)
    try:
        started = time.monotonic()
        snapshot = directory_read(directory_import)
        report.seconds["read"] = time.monotonic() - started
        report.read = len(snapshot.people)
        for message in snapshot.skipped:
            report.error(message)
        started = time.monotonic()
        _Run(directory_import, snapshot, report, dry_run, actor, now, progress).apply()
        report.seconds["apply"] = time.monotonic() - started
    except (ConnectorError, DomainError, DatabaseError) as exc:
        if not dry_run:
            _record(directory_import=directory_import, report=report, error=str(exc), now=now)
        raise
    except BaseException:
        if not dry_run:
            _record(
                directory_import=directory_import,
                report=report,
                error=_("The run stopped unexpectedly."),
                now=now,
            )
        raise
    if not dry_run:
        _record(directory_import=directory_import, report=report, error="", now=now)
    return report


def directory_import_run_by_id(*, import_id, now=None):
    """The scheduled run of one import (the task's entry point): the report as a dict, or
    None when another run holds it or it was disabled since it was enqueued."""
    directory_import = DirectoryImport.objects.select_related("system").filter(pk=import_id).first()
    if directory_import is None or not directory_import.enabled:
        return None
    try:
        return directory_import_run(directory_import=directory_import, now=now).as_dict()
    except StateConflict:
        return None
    except ConnectorError:
        return None  # recorded on the row as its last error; the next run tries again


def directory_imports_enqueue_due(*, now=None):
    """Enqueue a run of each enabled import whose next run has come and that is not running;
    returns how many were enqueued."""
    now = now or timezone.now()
    due = (
        DirectoryImport.objects.filter(enabled=True)
        .exclude(next_run__gt=now)
        .exclude(lease_expires__gt=now)
        .values_list("pk", flat=True)
    )
    enqueued = 0
    for pk in due:
        enqueue_named(RUN_TASK, str(pk))
        enqueued += 1
    return enqueued


class _Run:
    """One application of a snapshot to the directory: people, managers, leavers, groups."""

    def __init__(self, directory_import, snapshot, report, dry_run, actor, now, progress):
        self.imp = directory_import
        self.snapshot = snapshot
        self.report = report
        self.dry_run = dry_run
        self.actor = actor
        self.now = now
        self.progress = progress
        self.source = services.Source(
            kind=services.Source.LDAP, name=directory_import.name, id=str(directory_import.pk)
        )
        self.fields = [f for f in directory_import.mapping() if f != "manager"]
        self.manage_managers = "manager" in directory_import.mapping()

    # --- Loading what the product has -----------------------------------------------------

    def _load(self):
        links = DirectoryImportLink.objects.filter(directory_import=self.imp)
        self.user_links = {}  # key -> (link id, user id, dn)
        self.group_links = {}
        for pk, key, user_id, group_id, dn in links.values_list(
            "pk", "key", "user_id", "group_id", "dn"
        ):
            if user_id:
                self.user_links[key] = (pk, user_id, dn)
            else:
                self.group_links[key] = (pk, group_id, dn)
        only = ["pk", "is_active", "manager_id", *self.fields]
        linked = User.objects.filter(directory_links__directory_import=self.imp).only(*only)
        self.users = {u.pk: u for u in linked}

    # --- The plan --------------------------------------------------------------------------

    def apply(self):
        self._load()
        people, emails = [], {}
        for person in self.snapshot.people:
            email = person.values.get("email", "")
            if not email:
                self.report.error(_("%(dn)s has no email address") % {"dn": person.dn})
                continue
            if email in emails:
                self.report.error(
                    _("%(dn)s has the email %(email)s of %(other)s")
                    % {"dn": person.dn, "email": email, "other": emails[email].dn}
                )
                continue
            emails[email] = person
            people.append(person)
        seen = {p.key for p in people}
        if len(seen) != len(people):
            counts = Counter(p.key for p in people)
            doubles = {k for k, n in counts.items() if n > 1}
            for person in [p for p in people if p.key in doubles]:
                self.report.error(_("%(dn)s shares its key with another entry") % {"dn": person.dn})
            people = [p for p in people if p.key not in doubles]
            seen -= doubles
        self.key_of_dn = {_dn(p.dn): p.key for p in people}
        self.outcome = {}
        self._people(people)
        if self.manage_managers:
            self._managers(people)
        self._leavers(seen)
        if self.imp.import_groups:
            self._groups()

    def _differences(self, user, person):
        changes = {}
        for name in self.fields:
            value = person.values.get(name, "")
            if (getattr(user, name) or "") != value:
                changes[name] = value
        if self.manage_managers:
            manager_id, known = self._manager_of(person)
            if known and user.manager_id != manager_id:
                changes["manager"] = manager_id
        return changes

    def _manager_of(self, person):
        """(the manager's user id or None, whether that is known yet): a manager created
        later in this run is known in the second pass."""
        key = self.key_of_dn.get(person.manager_dn)
        if key is None:
            return None, True  # none, or not among the people read (reported in the report)
        link = self.user_links.get(key)
        if link is None or link[1] is None:
            return None, False
        return link[1], True

    def _people(self, people):
        """Creations, adoptions and changes of fields and of the enabled flag, in batches."""
        creates, work = [], []
        unlinked = [p for p in people if p.key not in self.user_links]
        by_email = {}
        emails = sorted({p.values["email"] for p in unlinked})
        only = ["pk", "email", "is_active", "manager_id", *self.fields]
        for start in range(0, len(emails), 500):
            found = (
                User.objects.annotate(lower_email=Lower("email"))
                .filter(lower_email__in=emails[start : start + 500])
                .only(*only)
            )
            for user in found:
                by_email[user.lower_email] = user
        key_of_user = {user_id: key for key, (_pk, user_id, _dn) in self.user_links.items()}
        seen = {p.key for p in people}
        for person in people:
            link = self.user_links.get(person.key)
            if link:
                work.append((person, self.users[link[1]], None))
                continue
            user = by_email.get(person.values["email"])
            if user is None:
                creates.append(person)
                continue
            old_key = key_of_user.get(user.pk)
            if old_key and old_key in seen:
                self.report.error(
                    _("%(dn)s has the email of %(user)s, who is another entry")
                    % {"dn": person.dn, "user": user.email}
                )
                continue
            # Someone with this address already (made by hand, or linked to an entry that
            # was deleted and re-created with a new key): this entry takes them over.
            work.append((person, user, old_key or ""))
        # New people level by level down the management chain, so that each is created
        # with their manager (who is new too, often).
        depth = self._depth_function({p.key for p in creates})
        levels = defaultdict(list)
        for person in creates:
            levels[depth(person)].append(person)
        with self.progress(_("people"), len(work) + len(creates)) as bar:
            for start in range(0, len(work), BATCH_SIZE):
                batch = work[start : start + BATCH_SIZE]
                self._batch(self._change_one, batch)
                bar.update(len(batch))
            for level in sorted(levels):
                people_of_level = levels[level]
                for start in range(0, len(people_of_level), BATCH_SIZE):
                    batch = people_of_level[start : start + BATCH_SIZE]
                    self._create_many(batch)
                    bar.update(len(batch))

    def _depth_function(self, new_keys):
        """person -> how many new people are above them in the management chain."""
        manager_dn = {p.key: p.manager_dn for p in self.snapshot.people}
        depths = {}

        def depth(key):
            chain, current = [], key
            while current in new_keys and current not in depths and current not in chain:
                chain.append(current)
                current = self.key_of_dn.get(manager_dn[current])
            level = depths.get(current, 0) if current in new_keys else -1
            for step in reversed(chain):
                level += 1
                depths[step] = level
            return depths[key]

        return lambda person: depth(person.key)

    def _create_many(self, people):
        """New people in a few statements (``users_provision_many``); when the service refuses
        one of them, the batch is made one by one so that only the refused are left out."""
        if self.dry_run:
            self._batch(self._create_one, [(p,) for p in people])
            return
        rows = [self._new_attributes(person) for person in people]
        try:
            with transaction.atomic():
                users = services.users_provision_many(
                    rows=rows, source=self.source, actor=self.actor, now=self.now
                )
                for person, user in zip(people, users, strict=True):
                    if not person.enabled:
                        services.user_disable(
                            user=user,
                            source=self.source,
                            actor=self.actor,
                            reason=self._disable_reason(),
                            now=self.now,
                        )
                DirectoryImportLink.objects.bulk_create(
                    [
                        DirectoryImportLink(
                            directory_import=self.imp,
                            key=person.key,
                            dn=person.dn,
                            user=user,
                            created=self.now,
                        )
                        for person, user in zip(people, users, strict=True)
                    ]
                )
        except (DomainError, IntegrityError):
            self._batch(self._create_one, [(p,) for p in people])
            return
        for person, user in zip(people, users, strict=True):
            self.users[user.pk] = user
            self.user_links[person.key] = (None, user.pk, person.dn)
            self.report.add("created", person.label)
            self.outcome[person.key] = "created"

    def _new_attributes(self, person):
        attributes = dict(person.values)
        manager_id, _known = self._manager_of(person)
        if manager_id is not None:
            attributes["manager"] = self.users.get(manager_id, manager_id)  # a row: no lookup
        return attributes

    def _batch(self, function, items):
        """The batch in one transaction, each item in its own savepoint: an entry the
        services refuse (an address someone else has) is reported and the others go on."""
        self.new_links, self.moved_links, self.link_events = [], [], []
        if self.dry_run:
            for item in items:
                function(*item)
            return
        with transaction.atomic():
            for item in items:
                # Each service call is its own savepoint: a refusal or a lost race (an
                # address taken meanwhile) rolls back that call only.
                try:
                    function(*item)
                except (DomainError, ValidationError, IntegrityError) as exc:
                    self.report.error(f"{item[0].dn}: {exc}")
            DirectoryImportLink.objects.bulk_create(self.new_links)
            if self.moved_links:
                DirectoryImportLink.objects.bulk_update(self.moved_links, ["key", "dn"])
            if self.link_events:
                audit_bulk(self.link_events)

    def _disable_reason(self):
        return _("Disabled in %(system)s.") % {"system": self.imp.system.name}

    def _change_one(self, person, user, adopted_from):
        """An entry linked to a person (or taking over ``user``, ``adopted_from`` the key
        that was theirs, "" for none): their fields and enabled flag follow the entry."""
        changes = self._differences(user, person)
        outcomes = []
        if changes:
            if not self.dry_run:
                services.user_update(
                    user=user, changes=changes, source=self.source, actor=self.actor, now=self.now
                )
            outcomes.append(("updated", f"{person.label}: {', '.join(sorted(changes))}"))
        if person.enabled and not user.is_active:
            if not self.dry_run:
                services.user_enable(user=user, source=self.source, actor=self.actor, now=self.now)
            outcomes.append(("enabled", person.label))
        elif not person.enabled and user.is_active:
            if not self.dry_run:
                services.user_disable(
                    user=user,
                    source=self.source,
                    actor=self.actor,
                    reason=self._disable_reason(),
                    now=self.now,
                )
            outcomes.append(("disabled", person.label))
        # The bookkeeping last: a refusal above rolls the savepoint back with nothing listed.
        if adopted_from is None:
            link_pk, _user_id, dn = self.user_links[person.key]
            if dn != person.dn:
                self.moved_links.append(
                    DirectoryImportLink(pk=link_pk, key=person.key, dn=person.dn)
                )
                self.user_links[person.key] = (link_pk, user.pk, person.dn)
        elif adopted_from:
            link_pk = self.user_links.pop(adopted_from)[0]
            self.moved_links.append(DirectoryImportLink(pk=link_pk, key=person.key, dn=person.dn))
            self.user_links[person.key] = (link_pk, user.pk, person.dn)
        else:
            self._link(person, user)
        if adopted_from is not None:
            # From now on the directory decides about this person (and their leaving).
            outcomes.append(("linked", f"{person.label}: {person.dn}"))
            self.link_events.append(
                audit_event(
                    action="user.linked",
                    obj=user,
                    actor=self.actor,
                    channel=self.source.channel,
                    target=user,
                    data=self.source.data(dn=person.dn, key=person.key, replaces=adopted_from),
                    now=self.now,
                )
            )
        self.users[user.pk] = user
        for kind, example in outcomes or [("unchanged", "")]:
            self.report.add(kind, example)
        self.outcome[person.key] = outcomes[0][0] if outcomes else "unchanged"

    def _link(self, person, user):
        self.new_links.append(
            DirectoryImportLink(
                directory_import=self.imp, key=person.key, dn=person.dn, user=user, created=self.now
            )
        )
        self.user_links[person.key] = (None, user.pk if user else None, person.dn)

    def _create_one(self, person):
        attributes = self._new_attributes(person)
        user = None
        if not self.dry_run:
            user = services.user_provision(
                attributes=attributes, source=self.source, actor=self.actor, now=self.now
            )
            if not person.enabled:
                services.user_disable(
                    user=user,
                    source=self.source,
                    actor=self.actor,
                    reason=self._disable_reason(),
                    now=self.now,
                )
            self.users[user.pk] = user
        self._link(person, user)
        self.report.add("created", person.label)
        self.outcome[person.key] = "created"

    # --- Managers, second pass -----------------------------------------------------------

    def _managers(self, people):
        """Managers created after their reports in this run, and managers not found."""
        work = []
        for person in people:
            link = self.user_links.get(person.key)
            if link is None:
                continue  # refused in the first pass
            manager_key = self.key_of_dn.get(person.manager_dn)
            if person.manager_dn and manager_key is None:
                self.report.add("managers_not_found", f"{person.label}: {person.manager_dn}")
            manager_id = self.user_links[manager_key][1] if manager_key in self.user_links else None
            user = self.users.get(link[1])
            current = user.manager_id if user is not None else None
            if self.dry_run and (user is None or manager_id is None):
                # A new person, or a new manager: nothing to compare before they exist.
                if user is not None and person.manager_dn and manager_key in self.user_links:
                    work.append((person, user, manager_id))
                continue
            if current != manager_id:
                work.append((person, user, manager_id))
        with self.progress(_("managers"), len(work)) as bar:
            for start in range(0, len(work), BATCH_SIZE):
                batch = work[start : start + BATCH_SIZE]
                self._batch(self._manager_one, batch)
                bar.update(len(batch))

    def _manager_one(self, person, user, manager_id):
        if not self.dry_run:
            services.user_update(
                user=user,
                changes={"manager": manager_id},
                source=self.source,
                actor=self.actor,
                now=self.now,
            )
        if self.outcome.get(person.key) == "unchanged":
            self.report.counts["unchanged"] -= 1
            self.report.add("updated", f"{person.label}: manager")
            self.outcome[person.key] = "updated"

    # --- People no longer found ----------------------------------------------------------

    def _leavers(self, seen):
        if not self.imp.disable_missing:
            return
        gone = [
            (key, link[1])
            for key, link in self.user_links.items()
            if key not in seen and link[1] in self.users and self.users[link[1]].is_active
        ]
        if not gone:
            return
        limit = self.imp.disable_limit
        base = self.imp.effective_user_base() or "/"
        if not self.snapshot.people:
            # Nobody at all is far more often a wrong base DN or filter than everyone leaving.
            self.report.error(
                _(
                    "Nobody was found under %(base)s, so nobody was disabled; check the base DN "
                    "and the filter."
                )
                % {"base": base}
            )
            return
        if limit and len(gone) > limit:
            self.report.error(
                _(
                    "%(n)s people are no longer found under %(base)s, more than the %(limit)s "
                    "this import may disable in one run; nobody was disabled. Check the base "
                    "DN and filter, or raise the limit."
                )
                % {"n": f"{len(gone):,}", "base": base, "limit": f"{limit:,}"}
            )
            return
        reason = _("No longer found in %(system)s under %(base)s.") % {
            "system": self.imp.system.name,
            "base": base,
        }
        with self.progress(_("leavers"), len(gone)) as bar:
            for start in range(0, len(gone), BATCH_SIZE):
                batch = [
                    (self.users[user_id], reason)
                    for _key, user_id in gone[start : start + BATCH_SIZE]
                ]
                self._batch(self._disable_one, batch)
                bar.update(len(batch))

    def _disable_one(self, user, reason):
        if not self.dry_run:
            services.user_disable(
                user=user, source=self.source, actor=self.actor, reason=reason, now=self.now
            )
        self.report.add("disabled", f"{user.display_name} <{user.email}>")

    # --- Groups -------------------------------------------------------------------------

    def _groups(self):
        groups = {}
        existing = {
            g.pk: g for g in Group.objects.filter(directory_links__directory_import=self.imp)
        }
        names = {g.name for g in self.snapshot.groups if g.key not in self.group_links}
        by_name = {g.display_name: g for g in Group.objects.filter(display_name__in=names)}
        found = {g.key for g in self.snapshot.groups}
        for key, (_pk, group_id, dn) in sorted(self.group_links.items()):
            if key not in found and group_id in existing:
                # Left as it is: a group may hold access packages' memberships and grants.
                self.report.add("groups_not_found", f"{existing[group_id].display_name} ({dn})")
        for entry in self.snapshot.groups:
            link = self.group_links.get(entry.key)
            group = existing.get(link[1]) if link else by_name.get(entry.name)
            try:
                with transaction.atomic() if not self.dry_run else nullcontext():
                    group = self._group_one(entry, group, link)
            except (DomainError, ValidationError) as exc:
                self.report.error(f"{entry.dn}: {exc}")
                continue
            groups[entry.key] = (entry, group)
        user_of_key = {key: link[1] for key, link in self.user_links.items()}
        group_ids = [g.pk for _e, g in groups.values() if g is not None]
        direct = defaultdict(set)
        for group_id, user_id in GroupMembership.objects.filter(
            group_id__in=group_ids, role=GroupMembership.Role.MEMBER, source=GrantSource.DIRECT
        ).values_list("group_id", "user_id"):
            direct[group_id].add(user_id)
        for entry, group in groups.values():
            wanted = {
                user_of_key.get(self.key_of_dn.get(dn)) or f"new:{dn}"
                for dn in entry.member_dns
                if self.key_of_dn.get(dn) in user_of_key
            }
            current = direct[group.pk] if group is not None else set()
            add, remove = wanted - current, current - wanted
            if not add and not remove:
                continue
            if not self.dry_run:
                try:
                    services.group_members_change(
                        group=group,
                        add=sorted(str(pk) for pk in add),
                        remove=sorted(str(pk) for pk in remove),
                        source=self.source,
                        actor=self.actor,
                        now=self.now,
                    )
                except DomainError as exc:
                    self.report.error(f"{entry.dn}: {exc}")
                    continue
            if add:
                self.report.add("members_added", entry.name, len(add))
            if remove:
                self.report.add("members_removed", entry.name, len(remove))

    def _group_one(self, entry, group, link):
        values = {"display_name": entry.name, "description": entry.description}
        if group is None:
            self.report.add("groups_created", entry.name)
            if self.dry_run:
                return None
            group = services.group_provision(
                attributes=values, source=self.source, actor=self.actor, now=self.now
            )
        else:
            changes = {k: v for k, v in values.items() if getattr(group, k) != v}
            if changes:
                self.report.add("groups_updated", f"{entry.name}: {', '.join(sorted(changes))}")
                if not self.dry_run:
                    services.group_update(
                        group=group,
                        changes=changes,
                        source=self.source,
                        actor=self.actor,
                        now=self.now,
                    )
        if self.dry_run:
            return group
        if link is None:
            DirectoryImportLink.objects.create(
                directory_import=self.imp, key=entry.key, dn=entry.dn, group=group, created=self.now
            )
        elif link[2] != entry.dn:
            DirectoryImportLink.objects.filter(pk=link[0]).update(dn=entry.dn)
        return group


def directory_import_check(directory_import):
    """InvalidRequest naming what is wrong with the import's settings, before any call."""
    try:
        directory_import.clean()
    except ValidationError as exc:
        messages = "; ".join(m for ms in exc.message_dict.values() for m in ms)
        raise InvalidRequest(
            _("%(name)s cannot run: %(errors)s") % {"name": directory_import, "errors": messages}
        ) from None
