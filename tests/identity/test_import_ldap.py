"""Directory import from a real OpenLDAP slapd: mapping, managers, the enabled flag, leavers,
groups, dry runs, the lease, the command and the admin."""

import secrets
import time
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.connectors.base import ConnectorError
from entitlements.errors import InvalidRequest, StateConflict
from entitlements.models import AssignmentState, AuditEvent, ConnectedSystem
from entitlements.queue import enqueue_named
from identity import importing
from identity.importing import _key, directory_import_claim, directory_import_run
from identity.models import DirectoryImport, DirectoryImportLink
from identity.tasks import run_directory_import
from tests import ldapserver
from tests.factories import GroupFactory, GroupResourceFactory, UserFactory, add_member
from tests.lifecycle.assignment_helpers import assign, package_giving, run_in_threads

pytestmark = pytest.mark.django_db

# The session's slapd and its connected system (tests/ldapserver.py); each test works in an
# organizational unit of its own there.
_ldap_process = ldapserver._ldap_process
ldap_server = ldapserver.ldap_server
ldap_system = ldapserver.ldap_system


class Tree:
    """An organizational unit of its own on the session's slapd, with people and groups."""

    def __init__(self, server):
        self.server = server
        self.dn = f"ou=t{secrets.token_hex(4)},{server.base_dn}"
        self.conn = server.connection()
        self._add(self.dn, ["organizationalUnit"], {"ou": self.dn.split(",")[0][3:]})

    def _add(self, dn, classes, attributes):
        self.conn.add(dn, classes, attributes)
        assert self.conn.result["result"] == 0, self.conn.result

    def person_dn(self, uid):
        return f"uid={uid},{self.dn}"

    def person(self, uid, *, manager=None, **attributes):
        values = {
            "cn": uid,
            "sn": uid,
            "uid": uid,
            "mail": f"{uid}@{self.dn[3:11]}.example.org",
            "displayName": uid.title(),
            **attributes,
        }
        if manager:
            values["manager"] = self.person_dn(manager)
        self._add(self.person_dn(uid), ["inetOrgPerson"], values)
        return self.person_dn(uid)

    def mail(self, uid):
        return f"{uid}@{self.dn[3:11]}.example.org"

    def change(self, uid, **attributes):
        import ldap3

        changes = {
            name: [(ldap3.MODIFY_REPLACE, [value] if value else [])]
            for name, value in attributes.items()
        }
        assert self.conn.modify(self.person_dn(uid), changes), self.conn.result

    def delete(self, uid):
        assert self.conn.delete(self.person_dn(uid)), self.conn.result

    def rename(self, uid, new_uid):
        assert self.conn.modify_dn(self.person_dn(uid), f"uid={new_uid}"), self.conn.result

    def group(self, name, members):
        dn = f"cn={name},{self.dn}"
        values = [self.person_dn(uid) for uid in members] or [dn]
        self._add(dn, ["groupOfNames"], {"cn": name, "member": values})
        return dn

    def set_members(self, name, members):
        import ldap3

        dn = f"cn={name},{self.dn}"
        values = [self.person_dn(uid) for uid in members] or [dn]
        assert self.conn.modify(dn, {"member": [(ldap3.MODIFY_REPLACE, values)]})


@pytest.fixture
def tree(ldap_server):
    tree = Tree(ldap_server)
    yield tree
    tree.conn.unbind()


@pytest.fixture
def directory_import(ldap_system, tree):
    return DirectoryImport.objects.create(
        name="Head office",
        system=ldap_system,
        user_base=tree.dn,
        group_base=tree.dn,
        disabled_filter="(employeeType=disabled)",
    )


def run(directory_import, **kwargs):
    directory_import.refresh_from_db()
    return directory_import_run(directory_import=directory_import, **kwargs)


def counts(report):
    return {k: v for k, v in report.as_dict()["counts"].items() if v}


def test_a_first_run_creates_the_people_with_their_mapped_attributes_and_audits_the_source(
    directory_import, tree
):
    tree.person(
        "ann",
        displayName="Ann Lee",
        departmentNumber="Finance",
        title="Controller",
        employeeNumber="E-17",
    )
    tree.person("bob")

    report = run(directory_import)

    assert counts(report) == {"created": 2}
    ann = User.objects.get(email=tree.mail("ann"))
    assert (ann.display_name, ann.department, ann.job_title, ann.employee_id) == (
        "Ann Lee",
        "Finance",
        "Controller",
        "E-17",
    )
    assert ann.is_active and not ann.has_usable_password()
    event = AuditEvent.objects.get(action="user.provisioned", target=ann)
    assert event.data["source"] == "ldap" and event.data["source_name"] == "Head office"
    assert DirectoryImportLink.objects.filter(directory_import=directory_import).count() == 2
    directory_import.refresh_from_db()
    assert directory_import.last_result["counts"]["created"] == 2
    assert directory_import.lease_expires is None and directory_import.last_error == ""
    assert directory_import.next_run == directory_import.last_started + timedelta(hours=1)


def test_a_second_run_changes_nothing_and_writes_no_audit_event(directory_import, tree):
    tree.person("ann", manager="bob")
    tree.person("bob", title="Head")
    run(directory_import)
    before = AuditEvent.objects.count()

    report = run(directory_import)

    assert counts(report) == {"unchanged": 2}
    assert AuditEvent.objects.count() == before


def test_a_changed_attribute_updates_the_person_and_a_renamed_entry_stays_the_same_person(
    directory_import, tree
):
    tree.person("ann", title="Analyst")
    run(directory_import)
    ann = User.objects.get(email=tree.mail("ann"))
    tree.change("ann", title="Controller", mail="ann.lee@example.org")
    tree.rename("ann", "alee")

    report = run(directory_import)

    assert counts(report) == {"updated": 1}
    ann.refresh_from_db()
    assert (ann.email, ann.job_title) == ("ann.lee@example.org", "Controller")
    assert User.objects.filter(email__endswith=tree.dn[3:11] + ".example.org").count() == 0
    event = AuditEvent.objects.get(action="user.updated", target=ann)
    assert event.data["after"] == {"email": "ann.lee@example.org", "job_title": "Controller"}
    assert DirectoryImportLink.objects.get(user=ann).dn == tree.person_dn("alee")


def test_an_attribute_removed_in_the_directory_is_cleared(directory_import, tree):
    tree.person("ann", title="Analyst")
    run(directory_import)
    tree.change("ann", title="")

    run(directory_import)

    assert User.objects.get(email=tree.mail("ann")).job_title == ""


def test_managers_are_resolved_by_dn_even_when_they_are_read_after_their_reports(
    directory_import, tree
):
    directory_import.system.settings = {**directory_import.system.settings, "page_size": 2}
    directory_import.system.save()
    # Reports first: with pages of two, the managers come in later pages.
    tree.person("r1", manager="m1")
    tree.person("r2", manager="m1")
    tree.person("r3", manager="m2")
    tree.person("m1", manager="boss")
    tree.person("m2", manager="boss")
    tree.person("boss")

    report = run(directory_import)

    assert counts(report) == {"created": 6}
    people = {u.email.split("@")[0]: u for u in User.objects.filter(email__contains=tree.dn[3:11])}
    assert people["r1"].manager == people["m1"] and people["r3"].manager == people["m2"]
    assert people["m1"].manager == people["boss"] and people["boss"].manager is None
    assert counts(run(directory_import)) == {"unchanged": 6}

    tree.change("r1", manager=tree.person_dn("m2"))
    report = run(directory_import)

    assert counts(report) == {"updated": 1, "unchanged": 5}
    assert User.objects.get(pk=people["r1"].pk).manager == people["m2"]


def test_a_manager_outside_the_base_is_reported_and_left_empty(directory_import, tree):
    tree.person("ann", manager="nobody")

    report = run(directory_import)

    assert report.counts["managers_not_found"] == 1
    assert User.objects.get(email=tree.mail("ann")).manager is None


def test_a_person_disabled_in_the_directory_is_disabled_and_enabled_again(directory_import, tree):
    tree.person("ann")
    tree.person("eve", employeeType="disabled")

    report = run(directory_import)

    assert counts(report) == {"created": 2}
    assert not User.objects.get(email=tree.mail("eve")).is_active
    tree.change("ann", employeeType="disabled")
    tree.change("eve", employeeType="")

    report = run(directory_import)

    assert counts(report) == {"disabled": 1, "enabled": 1}
    assert not User.objects.get(email=tree.mail("ann")).is_active
    assert User.objects.get(email=tree.mail("eve")).is_active
    disabled = AuditEvent.objects.get(action="user.disabled", target__email=tree.mail("ann"))
    assert disabled.data["source_name"] == "Head office"
    assert "Disabled in Test OpenLDAP" in disabled.reason


def test_people_gone_from_the_directory_are_disabled_and_come_back_enabled(directory_import, tree):
    tree.person("ann")
    tree.person("bob")
    run(directory_import)
    tree.delete("bob")

    report = run(directory_import)

    assert counts(report) == {"disabled": 1, "unchanged": 1}
    bob = User.objects.get(email=tree.mail("bob"))
    assert not bob.is_active
    event = AuditEvent.objects.get(action="user.disabled", target=bob)
    assert event.reason.startswith("No longer found in Test OpenLDAP")
    assert counts(run(directory_import)) == {"unchanged": 1}

    tree.person("bob")  # back, with a new entryUUID: takes over the same person
    report = run(directory_import)

    assert counts(report) == {"linked": 1, "enabled": 1, "unchanged": 1}
    assert User.objects.get(pk=bob.pk).is_active
    assert DirectoryImportLink.objects.filter(user=bob).count() == 1


def test_people_gone_stay_enabled_when_the_import_does_not_disable_them(directory_import, tree):
    directory_import.disable_missing = False
    directory_import.save()
    tree.person("ann")
    run(directory_import)
    tree.delete("ann")

    assert counts(run(directory_import)) == {}
    assert User.objects.get(email=tree.mail("ann")).is_active


def test_a_run_that_would_disable_more_people_than_its_limit_disables_nobody(
    directory_import, tree
):
    for uid in ("a", "b", "c", "stays"):
        tree.person(uid)
    run(directory_import)
    directory_import.disable_limit = 2
    directory_import.save()
    for uid in ("a", "b", "c"):
        tree.delete(uid)

    report = run(directory_import)

    assert report.counts["disabled"] == 0 and report.counts["errors"] == 1
    assert "3 people are no longer found" in report.errors[0]
    assert User.objects.filter(email__contains=tree.dn[3:11], is_active=True).count() == 4


def test_a_run_that_finds_nobody_disables_nobody(directory_import, tree):
    tree.person("ann")
    run(directory_import)
    directory_import.user_filter = "(uid=nobody-has-this)"
    directory_import.save()

    report = run(directory_import)

    assert report.counts["disabled"] == 0
    assert report.errors == [
        f"Nobody was found under {tree.dn}, so nobody was disabled; check the base DN and the "
        "filter."
    ]
    assert User.objects.get(email=tree.mail("ann")).is_active


def test_someone_already_in_the_directory_with_the_address_is_taken_over_not_duplicated(
    directory_import, tree
):
    tree.person("ann", title="Controller")
    existing = UserFactory(email=tree.mail("ann"), display_name="Ann", job_title="")

    report = run(directory_import)

    assert counts(report) == {"linked": 1, "updated": 1}
    existing.refresh_from_db()
    assert existing.job_title == "Controller"
    assert DirectoryImportLink.objects.get(directory_import=directory_import).user == existing
    linked = AuditEvent.objects.get(action="user.linked", target=existing)
    assert (
        linked.data["dn"] == tree.person_dn("ann") and linked.data["source_name"] == "Head office"
    )


def test_two_entries_with_one_address_are_reported_and_the_first_is_imported(
    directory_import, tree
):
    tree.person("ann")
    tree.person("ann2", mail=tree.mail("ann"))

    report = run(directory_import)

    assert report.counts["created"] == 1 and report.counts["errors"] == 1
    assert tree.mail("ann") in report.errors[0]


def test_groups_are_imported_with_their_members_and_follow_the_directory(directory_import, tree):
    directory_import.import_groups = True
    directory_import.save()
    for uid in ("ann", "bob", "cem"):
        tree.person(uid)
    tree.group("Finance", ["ann", "bob"])

    report = run(directory_import)

    group = Group.objects.get(display_name="Finance")
    assert report.counts["groups_created"] == 1 and report.counts["members_added"] == 2
    members = {m.user.email for m in group.memberships.all()}
    assert members == {tree.mail("ann"), tree.mail("bob")}
    delivered = UserFactory()
    GroupMembership.objects.create(group=group, user=delivered, source=GrantSource.ENTITLEMENT)
    events = AuditEvent.objects.count()
    assert counts(run(directory_import)) == {"unchanged": 3}
    assert AuditEvent.objects.count() == events

    tree.set_members("Finance", ["bob", "cem"])
    report = run(directory_import)

    assert (report.counts["members_added"], report.counts["members_removed"]) == (1, 1)
    members = {m.user.email for m in group.memberships.all()}
    assert members == {tree.mail("bob"), tree.mail("cem"), delivered.email}
    event = AuditEvent.objects.filter(action="group.membersChanged").latest("created")
    assert event.data["source_name"] == "Head office"

    tree.conn.delete(f"cn=Finance,{tree.dn}")
    report = run(directory_import)

    assert report.examples["groups_not_found"] == [f"Finance (cn=Finance,{tree.dn})"]
    assert group.memberships.count() == 3  # left as it was


def test_a_group_of_the_same_name_is_taken_over(directory_import, tree):
    directory_import.import_groups = True
    directory_import.save()
    tree.person("ann")
    tree.group("Sales", ["ann"])
    sales = GroupFactory(display_name="Sales")
    add_member(sales, UserFactory())  # given by hand, not in the directory: removed

    run(directory_import)

    assert Group.objects.filter(display_name="Sales").count() == 1
    assert [m.user.email for m in sales.memberships.all()] == [tree.mail("ann")]


def test_a_dry_run_reports_the_changes_and_writes_nothing(directory_import, tree):
    tree.person("ann", manager="bob")
    tree.person("bob")
    before = AuditEvent.objects.count()

    report = run(directory_import, dry_run=True)

    assert counts(report) == {"created": 2}
    assert report.dry_run and "dry run" in report.summary()
    assert not User.objects.filter(email=tree.mail("ann")).exists()
    assert AuditEvent.objects.count() == before
    directory_import.refresh_from_db()
    assert directory_import.last_started is None and directory_import.last_result == {}

    run(directory_import)
    tree.change("ann", title="Boss")
    tree.delete("bob")
    report = run(directory_import, dry_run=True)

    assert counts(report) == {"updated": 1, "disabled": 1, "managers_not_found": 1}
    assert User.objects.get(email=tree.mail("bob")).is_active


def test_a_second_run_is_refused_while_another_holds_the_import(directory_import, tree):
    directory_import_claim(directory_import=directory_import)

    with pytest.raises(StateConflict, match="already running"):
        run(directory_import)

    directory_import.refresh_from_db()
    directory_import.lease_expires -= timedelta(hours=3)  # the holder died: its lease ran out
    directory_import.save()
    tree.person("ann")
    assert counts(run(directory_import)) == {"created": 1}


def test_an_unreachable_server_is_a_connector_error_recorded_on_the_import(
    directory_import, ldap_server
):
    ldap_server.stop_process()

    with pytest.raises(ConnectorError, match="did not answer"):
        run(directory_import)

    directory_import.refresh_from_db()
    assert "did not answer" in directory_import.last_error
    assert directory_import.lease_expires is None


def test_a_bad_mapping_is_refused_before_the_server_is_called(directory_import):
    directory_import.attribute_map = {"password": "userPassword"}
    directory_import.save()

    with pytest.raises(InvalidRequest, match="password cannot be imported"):
        run(directory_import)


def test_the_command_prints_what_changed(directory_import, tree):
    tree.person("ann")
    out = StringIO()

    call_command("directory_import", "Head office", "--no-progress", stdout=out)

    assert "1 people read; 1 created" in out.getvalue()
    assert f"created: Ann <{tree.mail('ann')}>" in out.getvalue()


def test_the_command_dry_run_writes_nothing(directory_import, tree):
    tree.person("ann")
    out = StringIO()

    call_command("directory_import", "Head office", "--dry-run", "--no-progress", stdout=out)

    assert "dry run, nothing written" in out.getvalue()
    assert not User.objects.filter(email=tree.mail("ann")).exists()


def test_the_command_ends_with_one_line_on_an_unreachable_server(directory_import, ldap_server):
    ldap_server.stop_process()

    with pytest.raises(CommandError) as error:
        call_command("directory_import", "Head office", "--no-progress")

    assert "did not answer" in str(error.value) and "\n" not in str(error.value)


def test_the_command_names_the_imports_when_the_name_is_wrong(directory_import):
    with pytest.raises(CommandError, match="the imports are: Head office"):
        call_command("directory_import", "Nope")


def test_an_import_reads_only_ldap_systems(db):
    system = ConnectedSystem.objects.create(kind=ConnectedSystem.Kind.SCIM, name="App")
    directory_import = DirectoryImport(name="x", system=system)

    with pytest.raises(InvalidRequest, match="reads an LDAP server"):
        directory_import_run(directory_import=directory_import)


def test_the_access_of_someone_gone_from_the_directory_ends_through_the_leaver_path(
    directory_import, tree
):
    tree.person("ann")
    tree.person("bob")
    run(directory_import)
    ann = User.objects.get(email=tree.mail("ann"))
    package, policy = package_giving(GroupResourceFactory())
    assignment = assign(ann, package, policy)
    tree.delete("ann")

    run(directory_import)

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    removal = AuditEvent.objects.get(action="assignment.removed", target=ann)
    assert removal.data["source"] == "ldap" and removal.data["source_name"] == "Head office"


def test_active_directory_imports_read_its_attributes_and_its_binary_guid():
    directory_import = DirectoryImport(flavor=DirectoryImport.Flavor.ACTIVE_DIRECTORY)
    guid = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")

    assert directory_import.effective_key_attribute() == "objectGUID"
    assert directory_import.mapping()["employee_id"] == "employeeID"
    assert "1.2.840.113556.1.4.803:=2" in directory_import.effective_disabled_filter()
    assert _key([guid.bytes_le]) == str(guid)
    assert _key(["2C11F1C4-81E9-1041-8917-13B2AD59C484"]) == "2c11f1c4-81e9-1041-8917-13b2ad59c484"


def test_the_schedule_enqueues_the_imports_that_are_due_and_not_running(
    directory_import, ldap_system, monkeypatch
):
    now = timezone.now()
    later = DirectoryImport.objects.create(
        name="Later", system=ldap_system, next_run=now + timedelta(minutes=5)
    )
    running = DirectoryImport.objects.create(name="Running", system=ldap_system)
    directory_import_claim(directory_import=running, now=now)
    DirectoryImport.objects.create(name="Off", system=ldap_system, enabled=False)
    sent = []
    monkeypatch.setattr(importing, "enqueue_named", lambda name, *args: sent.append((name, args)))

    assert importing.directory_imports_enqueue_due(now=now) == 1

    assert sent == [("identity.tasks.run_directory_import", (str(directory_import.pk),))]
    assert importing.directory_imports_enqueue_due(now=now + timedelta(minutes=6)) == 2
    assert later.pk in {uuid.UUID(args[0]) for _name, args in sent}


def test_the_scheduled_task_runs_the_import_once_and_sets_its_next_run(directory_import, tree):
    tree.person("ann")

    result = run_directory_import(str(directory_import.pk))

    assert result["counts"]["created"] == 1
    directory_import.refresh_from_db()
    assert directory_import.next_run == directory_import.last_started + directory_import.interval
    directory_import_claim(directory_import=directory_import)
    assert run_directory_import(str(directory_import.pk)) is None  # another run holds it


def test_an_address_written_in_capitals_is_the_same_person(directory_import, tree):
    tree.person("ann")
    existing = UserFactory(email=tree.mail("ann").upper())

    report = run(directory_import)

    assert report.counts["created"] == 0 and report.counts["errors"] == 0
    assert DirectoryImportLink.objects.get(directory_import=directory_import).user == existing


def test_when_the_bulk_creation_refuses_a_batch_its_people_are_created_one_by_one(
    directory_import, tree, monkeypatch
):
    tree.person("ann")
    tree.person("bob")

    def refuse(**kwargs):
        raise InvalidRequest("Person 2 (bob@...): refused")

    monkeypatch.setattr(importing.services, "users_provision_many", refuse)

    report = run(directory_import)

    assert counts(report) == {"created": 2}
    assert User.objects.filter(email__in=[tree.mail("ann"), tree.mail("bob")]).count() == 2
    assert DirectoryImportLink.objects.filter(directory_import=directory_import).count() == 2


@pytest.mark.postgres_only
def test_two_runs_claiming_one_import_at_once_let_exactly_one_through(
    transactional_db, ldap_system
):
    directory_import = DirectoryImport.objects.create(name="Once", system=ldap_system)

    def claim():
        try:
            directory_import_claim(
                directory_import=DirectoryImport.objects.get(pk=directory_import.pk)
            )
        except StateConflict:
            return "refused"
        return "claimed"

    assert sorted(run_in_threads(claim, claim)) == ["claimed", "refused"]


def test_the_command_ends_with_one_line_on_a_bad_configuration(directory_import):
    directory_import.attribute_map = {"email": ""}
    directory_import.save()

    with pytest.raises(CommandError) as error:
        call_command("directory_import", "Head office", "--no-progress")

    assert str(error.value) == "Head office cannot run: email needs an attribute."


def test_the_command_ends_with_one_line_while_another_run_holds_the_import(directory_import):
    directory_import_claim(directory_import=directory_import)

    with pytest.raises(CommandError, match="Head office is already running") as error:
        call_command("directory_import", "Head office", "--no-progress")

    assert "\n" not in str(error.value)


@pytest.mark.postgres_only
@pytest.mark.celery_worker
def test_beats_job_runs_a_due_import_on_a_real_worker(directory_import, tree, celery_worker):
    tree.person("ann")

    enqueue_named("identity.tasks.run_due_directory_imports")  # what beat sends

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        directory_import.refresh_from_db()
        if directory_import.last_finished:
            break
        time.sleep(0.2)
    assert directory_import.last_finished, "".join(celery_worker.output[-30:])
    assert directory_import.last_result["counts"]["created"] == 1
    assert User.objects.filter(email=tree.mail("ann")).exists()


def test_a_bit_of_an_integer_attribute_says_disabled_as_active_directorys_flag_does(
    directory_import, tree
):
    # Active Directory's default is userAccountControl bit 2 through the bitwise-AND matching
    # rule; slapd has the same rule, tried here on the nis schema's integer shadowFlag.
    directory_import.disabled_filter = "(shadowFlag:1.2.840.113556.1.4.803:=2)"
    directory_import.save()
    classes = ["inetOrgPerson", "shadowAccount"]
    for uid, flag in (("ann", "512"), ("eve", "514")):  # 514 = 512 + 2: disabled
        tree._add(
            tree.person_dn(uid),
            classes,
            {"cn": uid, "sn": uid, "uid": uid, "mail": tree.mail(uid), "shadowFlag": flag},
        )

    run(directory_import)

    assert User.objects.get(email=tree.mail("ann")).is_active
    assert not User.objects.get(email=tree.mail("eve")).is_active
