"""Configuration as code: config_export writes the configuration, config_apply plans and
applies a file through the audited services, in one transaction, idempotently."""

import io
from datetime import UTC, datetime

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction

from demo.organisation import seed_organisation
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AuditEvent,
    Catalog,
    ConnectedSystem,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    Resource,
    ResourceRole,
    ResourceRoleScope,
    RoleAssignment,
    StageApproverSet,
)

pytestmark = pytest.mark.django_db

CONFIGURATION_MODELS = [
    Catalog,
    RoleAssignment,
    Resource,
    ResourceRole,
    AccessPackage,
    ResourceRoleScope,
    AssignmentPolicy,
    PolicySubjectSet,
    ApprovalStage,
    StageApproverSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    AccessPackage.incompatible_access_packages.through,
    AccessPackage.incompatible_groups.through,
]


class _Rollback(Exception):
    pass


def export(**options):
    out = io.StringIO()
    call_command("config_export", stdout=out, **options)
    return out.getvalue()


def apply(path, *args):
    out = io.StringIO()
    call_command("config_apply", str(path), *args, stdout=out)
    return out.getvalue()


def counts():
    return {model.__name__: model.objects.count() for model in CONFIGURATION_MODELS}


# What a round trip may change: database ids, when rows were written, and the ids a
# resource's origin system gives (a new database gives its groups and apps new ones).
NOT_COMPARED = {"id", "created", "modified", "created_at", "updated_at", "origin_id"}


def natural(obj, depth=0):
    """A row as its values, with the rows it refers to as theirs (directory rows by name)."""
    if obj._meta.app_label != "entitlements" or depth > 3:
        return str(obj)
    values = []
    for f in obj._meta.concrete_fields:
        if f.primary_key or f.name in NOT_COMPARED:
            continue
        if f.is_relation:
            related = getattr(obj, f.name)
            value = None if related is None else natural(related, depth + 1)
        else:
            value = getattr(obj, f.attname)
        values.append((f.name, value))
    return tuple(values)


def rows():
    """Every configuration row by its values: what an exact round trip reproduces."""
    return {
        model.__name__: sorted(repr(natural(row)) for row in model.objects.all())
        for model in CONFIGURATION_MODELS
    }


def write(tmp_path, doc, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def package(doc, name):
    return next(p for p in doc["packages"] if p["name"] == name)


@pytest.fixture
def demo():
    seed_organisation()


@pytest.fixture
def demo_file(demo, tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(export(), encoding="utf-8")
    return path


def test_export_then_apply_on_an_empty_database_reproduces_the_demo_configuration(tmp_path):
    # The whole demo is seeded, exported and counted, then rolled back: the database is
    # empty again, and gets only the demo's directory (people, groups, apps, sites).
    try:
        with transaction.atomic():
            seed_organisation()
            first, demo_counts, demo_rows = export(), counts(), rows()
            raise _Rollback
    except _Rollback:
        pass
    assert not AccessPackage.objects.exists()
    seed_organisation(directory_only=True)
    assert not Resource.objects.exists() and Catalog.objects.count() == 1  # the built-in one
    path = tmp_path / "demo.yaml"
    path.write_text(first, encoding="utf-8")

    output = apply(path, "--yes")

    assert "+ package Engineering / Production access" in output
    assert "Applied: " in output
    assert export() == first
    assert counts() == demo_counts
    after = rows()
    for model in demo_rows:  # model by model, so a difference names its model
        assert after[model] == demo_rows[model], model
    events = AuditEvent.objects.count()
    assert apply(path, "--yes").startswith("No changes.")
    assert AuditEvent.objects.count() == events


def test_the_export_is_the_same_bytes_every_time_in_a_bounded_number_of_queries(
    demo, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        first = export()
    assert export() == first
    doc = yaml.safe_load(first)
    assert [c["name"] for c in doc["catalogs"]] == sorted(c["name"] for c in doc["catalogs"])
    stage = package(doc, "Contractor access")["policies"][0]["stages"][0]
    assert stage["durationBeforeAutomaticDenial"] == "7 days"
    assert stage["fallbackPrimaryApprovers"] == [{"user": "approver@demo.example"}]


def test_a_second_apply_prints_no_changes_and_writes_no_audit_event(demo_file):
    events = AuditEvent.objects.count()
    output = apply(demo_file, "--yes")
    assert output.strip() == "No changes. The configuration matches the file."
    assert AuditEvent.objects.count() == events


def test_the_plan_shows_a_change_and_a_delete_as_a_diff_and_applies_them(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    production = package(doc, "Production access")
    production["description"] = "Three days of production access."
    production["policies"][0]["expirationDuration"] = "3 days"
    production["policies"][0]["stages"] = production["policies"][0]["stages"][:1]
    doc["packages"].remove(package(doc, "Partner site visitor"))
    path = write(tmp_path, doc)
    events = AuditEvent.objects.count()

    output = apply(path, "--yes")

    assert "~ package Engineering / Production access\n" in output
    assert "    + description: Three days of production access.\n" in output
    assert "    - expirationDuration: 7 days\n    + expirationDuration: 3 days\n" in output
    assert "- stage Engineering / Production access / Engineers on call / 2\n" in output
    assert "- package Partners / Partner site visitor\n" in output
    assert "Plan: 0 to create, 2 to change, 2 to delete." in output
    policy = AssignmentPolicy.objects.get(access_package__display_name="Production access")
    assert policy.expiration_duration.days == 3
    assert list(policy.approval_stages.values_list("sequence", flat=True)) == [1]
    assert not AccessPackage.objects.filter(display_name="Partner site visitor").exists()
    deleted = AuditEvent.objects.filter(action="accessPackage.deleted").get()
    assert deleted.data["before"]["display_name"] == "Partner site visitor"
    assert AuditEvent.objects.filter(action="assignmentPolicy.changed").count() == 1
    assert AuditEvent.objects.count() > events
    assert apply(path, "--yes").startswith("No changes.")


def test_an_added_approver_and_a_new_package_are_created_through_the_services(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    stage = package(doc, "Production access")["policies"][0]["stages"][0]
    stage["primaryApprovers"].append({"group": "Access Approvers"})
    doc["packages"].append(
        {
            "catalog": "Engineering",
            "name": "Handbook readers",
            "roles": [{"site": "https://sites.demo.example/engineering", "role": "Member"}],
            "policies": [{"name": "Everyone", "expirationDuration": "2 weeks"}],
        }
    )
    output = apply(write(tmp_path, doc), "--yes", "--actor", "admin@demo.example")
    assert "+ package Engineering / Handbook readers" in output
    assert "+ primaryApprovers: {group: Access Approvers}" in output
    new = AccessPackage.objects.get(display_name="Handbook readers")
    assert new.assignment_policies.get().expiration_duration.days == 14
    event = AuditEvent.objects.get(action="accessPackage.created", object_id=str(new.pk))
    assert event.actor.email == "admin@demo.example"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda doc: package(doc, "Production access").update(colour="red"),
            "packages[{i}].colour: unknown key",
        ),
        (
            lambda doc: package(doc, "Production access")["policies"][0].update(
                expirationDuration="thirty days"
            ),
            "packages[{i}].policies[0].expirationDuration: 'thirty days' is not a duration",
        ),
        (
            lambda doc: package(doc, "Production access")["policies"][0]["stages"][1].update(
                primaryApprovers=[{"user": "bob@example.com"}]
            ),
            "packages[{i}].policies[0].stages[1].primaryApprovers[0].user: no user bob@example.com",
        ),
        (
            lambda doc: package(doc, "Production access").update(catalog="Research"),
            "packages[{i}].catalog: the catalog 'Research' is not among the file's catalogs",
        ),
        (
            lambda doc: package(doc, "Production access")["policies"][0]["stages"][1].pop(
                "primaryApprovers"
            ),
            "packages[{i}].policies[0].stages[1].primaryApprovers: Approvers: stage 2 has no "
            "approver",
        ),
        (
            lambda doc: package(doc, "Production access")["policies"][0]["stages"][1].update(
                isEscalationEnabled=True, durationBeforeEscalation="5 days"
            ),
            "packages[{i}].policies[0].stages[1].durationBeforeEscalation: Escalation must "
            "happen before the decision deadline.",
        ),
    ],
)
def test_a_mistake_in_the_file_names_its_place_and_nothing_changes(
    demo_file, tmp_path, change, message
):
    doc = yaml.safe_load(demo_file.read_text())
    index = doc["packages"].index(package(doc, "Production access"))
    package(doc, "Production access")["description"] = "A change that must not be applied."
    change(doc)
    before, events = export(), AuditEvent.objects.count()

    with pytest.raises(CommandError) as error:
        apply(write(tmp_path, doc), "--yes")

    assert message.format(i=index) in str(error.value)
    assert "\n" not in str(error.value)
    assert export() == before
    assert AuditEvent.objects.count() == events


def test_a_package_people_hold_cannot_be_deleted_and_nothing_is_applied(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    assert Assignment.objects.filter(access_package__display_name="Project Phoenix team").exists()
    doc["packages"].remove(package(doc, "Project Phoenix team"))
    package(doc, "Production access")["description"] = "Not applied."
    before = export()
    with pytest.raises(CommandError, match="package Engineering / Project Phoenix team: cannot"):
        apply(write(tmp_path, doc), "--yes")
    assert export() == before


def test_a_dry_run_shows_the_plan_and_changes_nothing(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    package(doc, "Production access")["isHidden"] = True
    before, events = export(), AuditEvent.objects.count()
    output = apply(write(tmp_path, doc), "--dry-run")
    assert "    - isHidden: false\n    + isHidden: true\n" in output
    assert "nothing changed" in output
    assert export() == before
    assert AuditEvent.objects.count() == events


def test_without_yes_and_without_a_terminal_nothing_is_applied(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    package(doc, "Production access")["isHidden"] = True
    with pytest.raises(CommandError, match="give --yes"):
        apply(write(tmp_path, doc))
    assert not AccessPackage.objects.get(display_name="Production access").is_hidden


def test_catalogs_the_file_leaves_out_are_deleted_only_with_prune(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    doc["catalogs"] = [c for c in doc["catalogs"] if c["name"] != "Partners"]
    doc["resources"] = [r for r in doc["resources"] if r["catalog"] != "Partners"]
    doc["packages"] = [p for p in doc["packages"] if p["catalog"] != "Partners"]
    path = write(tmp_path, doc)
    assert apply(path, "--yes").startswith("No changes.")
    assert Catalog.objects.filter(display_name="Partners").exists()

    output = apply(path, "--yes", "--prune")
    assert "- catalog Partners\n" in output
    assert "- package Partners / Partner project collaboration\n" in output
    assert not Catalog.objects.filter(display_name="Partners").exists()


def test_the_actor_must_be_an_administrator(demo_file):
    with pytest.raises(CommandError, match="--actor: no active administrator"):
        apply(demo_file, "--yes", "--actor", "employee@demo.example")


def test_durations_are_read_in_words_or_iso_8601_and_written_in_words():
    from configfile.document import duration_words, parse_duration_text

    assert parse_duration_text("2 weeks").days == 14
    assert parse_duration_text("P14D") == parse_duration_text("14 days")
    assert parse_duration_text("1 day, 12 hours").total_seconds() == 36 * 3600
    assert parse_duration_text("PT8H") == parse_duration_text("8 hours")
    assert duration_words(parse_duration_text("P1DT12H")) == "1 day 12 hours"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_text("a fortnight")


def test_a_stage_whose_manager_may_be_missing_applies_with_a_warning(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    stage = package(doc, "Production access")["policies"][0]["stages"][0]
    stage.pop("fallbackPrimaryApprovers")
    stage["durationBeforeAutomaticDenial"] = "P2D"
    output = apply(write(tmp_path, doc), "--yes")
    assert (
        "    - durationBeforeAutomaticDenial: 3 days\n    + durationBeforeAutomaticDenial: 2 days\n"
        in output
    )
    assert "Warning: policy Engineering / Production access / Engineers on call: Stage 1:" in output
    assert "Applied: 0 created, 1 changed, 0 deleted." in output


def test_a_role_given_twice_is_refused(demo_file, tmp_path):
    doc = yaml.safe_load(demo_file.read_text())
    roles = package(doc, "Production access")["roles"]
    roles.append(dict(roles[0]))
    with pytest.raises(CommandError, match=r"roles\[1\]: given twice"):
        apply(write(tmp_path, doc), "--yes")


def test_two_questions_with_the_same_number_are_refused_by_the_export(demo):
    question = Question.objects.filter(policy__display_name="Engineers on call").get()
    Question.objects.create(policy=question.policy, sequence=question.sequence, text="Why?")
    with pytest.raises(CommandError, match="Engineers on call / 1 exists twice"):
        export()


def test_an_export_of_one_catalog_applies_without_touching_the_others(demo, tmp_path):
    path = tmp_path / "finance.yaml"
    path.write_text(export(catalogs=["Finance"]), encoding="utf-8")
    doc = yaml.safe_load(path.read_text())
    assert [c["name"] for c in doc["catalogs"]] == ["Finance"]
    assert {p["catalog"] for p in doc["packages"]} == {"Finance"}
    package(doc, "Payment approval")["description"] = "Approve supplier payments."
    output = apply(write(tmp_path, doc), "--yes")
    assert "Plan: 0 to create, 1 to change, 0 to delete." in output
    with pytest.raises(CommandError, match="No catalog named Research"):
        export(catalogs=["Research"])


def test_a_catalog_file_may_hand_out_the_roles_of_a_catalog_it_does_not_manage(demo, tmp_path):
    doc = yaml.safe_load(export(catalogs=["Sales"]))
    doc["resources"].append({"catalog": "Sales", "directoryRole": "Finance"})
    output = apply(write(tmp_path, doc), "--yes")
    assert "+ resource Sales: directoryRole Finance\n" in output
    resource = Resource.objects.get(
        catalog__display_name="Sales", role_catalog__display_name="Finance"
    )
    assert resource.display_name == "Admin roles: Finance"
    doc["resources"][-1]["directoryRole"] = "Research"
    with pytest.raises(CommandError, match=r"directoryRole: the catalog 'Research' is not among"):
        apply(write(tmp_path, doc), "--yes")


def test_a_change_made_while_the_plan_is_shown_stops_the_apply(demo_file, tmp_path, monkeypatch):
    doc = yaml.safe_load(demo_file.read_text())
    package(doc, "Production access")["isHidden"] = True

    def someone_else_edits_while_asked(prompt):
        AccessPackage.objects.filter(display_name="Company summit").update(description="New.")
        return "y"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", someone_else_edits_while_asked)
    with pytest.raises(CommandError, match="changed while the plan was shown; nothing was"):
        apply(write(tmp_path, doc))
    assert not AccessPackage.objects.get(display_name="Production access").is_hidden


def test_a_group_of_a_connected_system_is_found_by_the_system_and_its_id(demo, tmp_path):
    ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="Corporate LDAP",
        settings={"url": "ldap://127.0.0.1:9", "group_base": "ou=groups,dc=example,dc=org"},
    )
    dn = "cn=ops,ou=groups,dc=example,dc=org"
    doc = yaml.safe_load(export())
    doc["resources"].append(
        {"catalog": "Engineering", "system": "Corporate LDAP", "originId": dn, "name": "Ops"}
    )
    package(doc, "Production access")["roles"].append(
        {"system": "Corporate LDAP", "originId": dn, "role": "Member"}
    )
    path = write(tmp_path, doc)

    output = apply(path, "--yes")

    assert f"+ resource Engineering: system Corporate LDAP {dn}\n" in output
    resource = Resource.objects.get(origin_id=dn)
    assert resource.group_id is None and resource.display_name == "Ops"
    assert ResourceRoleScope.objects.filter(
        access_package__display_name="Production access", role__resource=resource
    ).exists()
    exported = yaml.safe_load(export())
    assert {
        "catalog": "Engineering",
        "system": "Corporate LDAP",
        "originId": dn,
        "name": "Ops",
    } in (exported["resources"])
    assert apply(path, "--yes").startswith("No changes.")


def test_a_policy_end_date_is_written_and_read_as_expiration_end_date_time(demo, tmp_path):
    policy = AssignmentPolicy.objects.get(
        access_package__display_name="Production access", display_name__isnull=False
    )
    policy.expiration_end_datetime = datetime(2027, 2, 15, 18, tzinfo=UTC)
    policy.save()
    text = export()
    assert "expirationEndDateTime: '2027-02-15T18:00:00Z'" in text
    assert "expirationEndDatetime" not in text
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace("2027-02-15T18:00:00Z", "2027-03-01T09:00:00Z"), "utf-8")
    assert "~ policy" in apply(path, "--yes")
    policy.refresh_from_db()
    assert policy.expiration_end_datetime == datetime(2027, 3, 1, 9, tzinfo=UTC)
