"""The audit trail's hash chain: linked at commit, checked by audit_verify, exported as
evidence an auditor verifies with the stand-alone script (docs/audit.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from entitlements.audit import audit_bulk, audit_event, audit_record
from entitlements.models import AuditEvent, Channel
from entitlements.models.audit import GENESIS_HASH, chain_head, link_hash
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)
VERIFY_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit-verify-export"


def record(n, **fields):
    return audit_record(action="test.recorded", obj=(AuditEvent, str(n)), **fields)


def verify_output():
    from io import StringIO

    out = StringIO()
    call_command("audit_verify", stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def tamper(sql, params):
    """A DBA's raw SQL: on PostgreSQL with the triggers off for the session, as a superuser can."""
    as_stored = [AuditEvent._meta.pk.get_db_prep_value(p, connection) for p in params[-1:]]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, [*params[:-1], *as_stored])


def chain():
    return list(
        AuditEvent.objects.order_by("sequence").values_list("sequence", "prev_hash", "hash")
    )


def test_each_event_is_linked_to_the_one_committed_before_it(requester):
    record(1, actor=requester, channel=Channel.PORTAL, data={"why": ["a", 1.5, 2.0]})
    with transaction.atomic():
        record(2, reason="two in one transaction")
        audit_bulk([audit_event(action="test.bulk", obj=(AuditEvent, str(n))) for n in range(3)])

    links = chain()
    assert [sequence for sequence, _prev, _hash in links] == [1, 2, 3, 4, 5]
    assert links[0][1] == GENESIS_HASH
    for (_s, _p, previous), (_s2, prev_hash, _h) in zip(links, links[1:], strict=False):
        assert prev_hash == previous
    first = AuditEvent.objects.get(sequence=1)
    assert first.hash == link_hash(GENESIS_HASH, first.digest)
    assert chain_head() == (5, links[-1][2])
    assert verify_output() == f"5 events, chain intact, head {links[-1][2]}"


def test_an_empty_trail_is_an_intact_chain():
    assert verify_output() == f"0 events, chain intact, head {GENESIS_HASH}"


def test_audit_verify_names_the_event_a_raw_sql_update_changed():
    for n in range(4):
        record(n)
    changed = AuditEvent.objects.get(sequence=3)
    tamper(
        "UPDATE entitlements_auditevent SET reason = %s WHERE id = %s", ["covered up", changed.pk]
    )

    with pytest.raises(CommandError) as broken:
        verify_output()
    message = str(broken.value)
    assert message.startswith(f"Broken link at event {changed.pk}, sequence 3: content digest")
    assert f"stored {changed.digest}" in message


def test_audit_verify_reports_a_deleted_event_and_a_cut_off_end():
    for n in range(4):
        record(n)
    second, last = AuditEvent.objects.get(sequence=2), AuditEvent.objects.get(sequence=4)
    if connection.vendor == "postgresql":
        # The head row remembers the end (on SQLite, the demo's database, the head is the
        # last event itself).
        tamper("DELETE FROM entitlements_auditevent WHERE id = %s", [last.pk])
        with pytest.raises(CommandError, match=r"chain head \(events missing at the end\)"):
            verify_output()

    tamper("DELETE FROM entitlements_auditevent WHERE id = %s", [second.pk])
    third = AuditEvent.objects.get(sequence=3)
    with pytest.raises(CommandError, match=f"event {third.pk}, sequence 3: sequence .*expected 2"):
        verify_output()


@pytest.mark.postgres_only
def test_the_database_refuses_to_change_or_delete_an_event():
    require_postgres()
    event = record(1)
    statements = [
        ("UPDATE entitlements_auditevent SET reason = 'x' WHERE id = %s", "UPDATE"),
        (
            "UPDATE entitlements_auditevent SET sequence = NULL, hash = NULL, prev_hash = NULL "
            "WHERE id = %s",
            "UPDATE",
        ),
        ("UPDATE entitlements_auditevent SET sequence = 7 WHERE id = %s", "UPDATE"),
        ("DELETE FROM entitlements_auditevent WHERE id = %s", "DELETE"),
    ]
    for sql, operation in statements:
        refused = pytest.raises(IntegrityError, match=f"append-only: {operation} of an audit")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk)._raw_delete(connection.alias)
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.get(pk=event.pk).delete()
    assert verify_output().startswith("1 events, chain intact")


@pytest.mark.postgres_only
def test_an_event_written_with_the_triggers_off_is_reported_unchained():
    require_postgres()
    record(1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        orphan = record(2)
    with pytest.raises(CommandError, match=f"event {orphan.pk}, sequence None: not chained"):
        verify_output()


def export(tmp_path, name, start, end):
    path = tmp_path / name
    call_command("audit_export", "--from", start, "--to", end, "--output", str(path))
    return path


def run_script(*args):
    result = subprocess.run(
        [sys.executable, "-I", str(VERIFY_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout.strip()


def test_the_evidence_export_is_verified_by_the_stand_alone_script(tmp_path):
    import time_machine

    for day, count in (("2026-03-01", 3), ("2026-03-02", 2), ("2026-03-03", 2)):
        with time_machine.travel(f"{day} 12:00Z", tick=False):
            for n in range(count):
                record(n, data={"day": day, "n": n, "ratio": 0.5})
    march_1 = export(tmp_path, "first.jsonl", "2026-03-01", "2026-03-02")
    march_2_3 = export(tmp_path, "rest.jsonl", "2026-03-02", "2026-03-04")

    code, out = run_script(march_1)
    assert code == 0, out
    assert out.startswith("OK: 3 events (sequence 1..3), chain intact from " + GENESIS_HASH)
    last_of_march_1 = json.loads(march_1.read_text().splitlines()[-1])["last_hash"]
    _sequence, head_hash = chain_head()
    code, out = run_script(march_2_3, "--prev-hash", last_of_march_1, "--head-hash", head_hash)
    assert code == 0, out
    assert out.startswith("OK: 4 events (sequence 4..7)")
    assert out.endswith(f"chain head at export: 7 {head_hash}")

    # One character changed in one event's content: the script names that event.
    lines = march_2_3.read_text().splitlines()
    fifth = json.loads(lines[2])
    fifth["content"]["reason"] = "edited"
    lines[2] = json.dumps(fifth)
    march_2_3.write_text("\n".join(lines) + "\n")
    code, out = run_script(march_2_3)
    assert code == 1
    assert out.startswith(f"event {fifth['content']['id']} (sequence 5): content digest")
    # A period that does not follow the previous one's last hash.
    code, out = run_script(march_1, "--prev-hash", last_of_march_1)
    assert (code, out.split(":")[0]) == (1, f"does not follow {last_of_march_1}")


def test_audit_export_refuses_a_bad_period(tmp_path):
    with pytest.raises(CommandError, match="'yesterday' is not a date"):
        call_command("audit_export", "--from", "yesterday", "--to", "2026-01-01")
    with pytest.raises(CommandError, match="--from must be before --to"):
        call_command("audit_export", "--from", "2026-02-01", "--to", "2026-01-01")
