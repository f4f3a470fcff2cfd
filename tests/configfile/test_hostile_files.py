"""Files that are small but hostile, or wrong in their types, are refused with one line
naming the place; nothing is changed and nothing raises past the command."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import DataError

from configfile.document import parse_duration_text
from configfile.management.commands import config_apply
from entitlements.models import AuditEvent, Catalog

pytestmark = pytest.mark.django_db


def refused(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    catalogs, events = Catalog.objects.count(), AuditEvent.objects.count()
    with pytest.raises(CommandError) as error:
        call_command("config_apply", str(path), "--yes", stdout=io.StringIO())
    message = str(error.value)
    assert "\n" not in message and len(message) < 400
    assert Catalog.objects.count() == catalogs and AuditEvent.objects.count() == events
    return message


CATALOG = "catalogs:\n- name: X\n"


def test_aliases_are_refused_before_they_expand(tmp_path):
    # Nine nested anchors: expanded, this description would be billions of characters.
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    text = "catalogs:\n- name: X\n  description: " + "{" + ", ".join(lines) + "}\n"
    message = refused(tmp_path, text)
    assert "line 3: anchors and aliases (&name, *name) are not read" in message


def test_a_file_larger_than_the_cap_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(config_apply, "MAX_FILE_SIZE", 100)
    message = refused(tmp_path, CATALOG + "  description: " + "x" * 200 + "\n")
    assert message.endswith("larger than 0 MB.") or "larger than" in message


def test_a_long_wrong_value_is_cut_short_in_the_message(tmp_path):
    message = refused(tmp_path, CATALOG + "  isExternallyVisible: " + "y" * 100_000 + "\n")
    assert message.startswith("catalogs[0].isExternallyVisible: expected true or false, got 'yyy")


@pytest.mark.parametrize(
    "text, where",
    [
        (CATALOG + "resources:\n- {catalog: [X], group: Contractors}\n", "resources[0].catalog"),
        (CATALOG + "resources:\n- {catalog: X, group: [Contractors]}\n", "resources[0].group"),
        (CATALOG + "resources:\n- {catalog: X, group: {a: 1}}\n", "resources[0].group"),
        (CATALOG + "resources:\n- {catalog: X, application: [A]}\n", "resources[0].application"),
        (CATALOG + "resources:\n- {catalog: X, site: [S]}\n", "resources[0].site"),
        (CATALOG + "resources:\n- {catalog: X, system: [S], originId: a}\n", "resources[0].system"),
        (
            CATALOG + "resources:\n- {catalog: X, directoryRole: [X]}\n",
            "resources[0].directoryRole",
        ),
        (CATALOG + "  roles:\n  - {role: catalogOwner, user: [x]}\n", "catalogs[0].roles[0].user"),
        (CATALOG + "  roles:\n  - {role: [catalogOwner], user: x}\n", "catalogs[0].roles[0].role"),
        (
            CATALOG + "packages:\n- catalog: X\n  name: P\n  incompatibleAccessPackages:\n"
            "  - {catalog: [X], name: P}\n",
            "packages[0].incompatibleAccessPackages[0].catalog",
        ),
        (
            CATALOG + "packages:\n- catalog: X\n  name: P\n  incompatibleGroups: [[G]]\n",
            "packages[0].incompatibleGroups[0]",
        ),
        (
            CATALOG + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
            "    allowedTargets:\n    - {connectedOrganization: [O]}\n",
            "packages[0].policies[0].allowedTargets[0].connectedOrganization",
        ),
        (
            CATALOG + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
            "    allowedTargets:\n    - {user: {a: 1}}\n",
            "packages[0].policies[0].allowedTargets[0].user",
        ),
    ],
)
def test_a_reference_of_the_wrong_type_names_its_place(tmp_path, text, where):
    assert refused(tmp_path, text) == f"{where}: expected a non-empty text"


@pytest.mark.parametrize(
    "text",
    [
        CATALOG
        + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        + "    reviewStartDate: 2027-02-30\n",
        CATALOG
        + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        + "    reviewStartDate: '2027-02-30'\n",
        CATALOG
        + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        + "    expirationEndDateTime: '2027-02-30T10:00:00Z'\n",
    ],
)
def test_an_impossible_date_is_refused(tmp_path, text):
    message = refused(tmp_path, text)
    assert "2027-02-30" in message or "day is out of range" in message


def test_an_impossible_date_given_as_text_is_refused_by_its_field(tmp_path):
    text = (
        CATALOG + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        "    expirationEndDateTime: '2027-02-30T10:00:00Z'\n"
    )
    assert refused(tmp_path, text).startswith(
        "packages[0].policies[0].expirationEndDateTime: expected a date and time"
    )


@pytest.mark.parametrize("value", ["99999999999 weeks", "P999999999999D"])
def test_a_huge_duration_is_refused(tmp_path, value):
    text = (
        CATALOG + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        f"    expirationDuration: '{value}'\n"
    )
    assert refused(tmp_path, text) == (
        f"packages[0].policies[0].expirationDuration: '{value}' is too long a duration"
    )


def test_deep_nesting_is_refused(tmp_path):
    message = refused(tmp_path, CATALOG + "  description: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in message or "description" in message


@pytest.mark.parametrize(
    "text, where",
    [
        ('catalogs:\n- name: "a\\0b"\n', "catalogs[0].name"),
        ('catalogs:\n- name: X\n  description: "a\\0b"\n', "catalogs[0].description"),
    ],
)
def test_a_nul_character_is_refused(tmp_path, text, where):
    assert refused(tmp_path, text) == f"{where}: a text cannot hold a NUL character (\\0)"


def test_a_database_refusal_the_checks_missed_is_one_line(tmp_path, monkeypatch):
    from configfile import plan

    def refuse(self, **kwargs):
        raise DataError("value too long for type character varying(256)\nCONTEXT: ...")

    monkeypatch.setattr(plan.Plan, "apply", refuse)
    assert refused(tmp_path, CATALOG) == (
        "Nothing applied: the database refused the change: value too long for type "
        "character varying(256)"
    )


@pytest.mark.parametrize("value", [30, 1.5, True])
def test_a_bare_number_is_not_a_duration(tmp_path, value):
    with pytest.raises(ValueError, match="with its unit"):
        parse_duration_text(value)
    text = (
        CATALOG + "packages:\n- catalog: X\n  name: P\n  policies:\n  - name: Q\n"
        f"    expirationDuration: {str(value).lower()}\n"
    )
    assert "write it with its unit" in refused(tmp_path, text)
