"""The review's findings on the audit chain (each fixed, each pinned here)."""

import datetime
import json

import pytest
from django.core.management import CommandError
from django.db import IntegrityError, connection, transaction

from entitlements.models import AuditEvent
from entitlements.models.audit import chain_head, link_hash
from tests.audit_chain.test_chain import record, run_script, verify_output
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)


def _columns():
    return [field.column for field in AuditEvent._meta.concrete_fields]


@pytest.mark.postgres_only
def test_an_insert_with_its_own_link_is_refused_and_the_chain_goes_on():
    require_postgres()
    first = record(1)
    columns = _columns()
    chosen = {
        "id": "gen_random_uuid()",
        "sequence": "h.sequence + 1",
        "prev_hash": "h.hash",
        "hash": "'h'",
    }
    select = ", ".join(chosen.get(column, f"e.{column}") for column in columns)
    sql = (
        f"INSERT INTO entitlements_auditevent ({', '.join(columns)}) SELECT {select} "
        "FROM entitlements_auditevent e, entitlements_auditchainhead h WHERE e.id = %s"
    )
    refused = pytest.raises(IntegrityError, match="without their link")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [first.pk.hex])
    record(2)
    assert verify_output().startswith("2 events, chain intact")


@pytest.mark.postgres_only
def test_a_client_cannot_fill_an_unchained_events_link():
    require_postgres()
    record(1)
    head_sequence, head_hash = chain_head()
    with pytest.raises(IntegrityError, match="append-only: UPDATE"), transaction.atomic():
        event = record(2)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE entitlements_auditevent SET sequence = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s",
                [head_sequence + 1, head_hash, link_hash(head_hash, event.digest), event.pk.hex],
            )
    assert verify_output().startswith("1 events, chain intact")


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM entitlements_auditchainhead",
        "UPDATE entitlements_auditchainhead SET sequence = 0, hash = repeat('0', 64)",
        "UPDATE entitlements_auditchainhead SET hash = repeat('1', 64)",
    ],
)
def test_the_chain_head_only_moves_forward(sql):
    require_postgres()
    record(1)
    refused = pytest.raises(IntegrityError, match="only moves forward")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    record(2)
    assert verify_output().startswith("2 events, chain intact")


def _export(tmp_path, name, start, end, *extra):
    from django.core.management import call_command

    path = tmp_path / name
    call_command("audit_export", "--from", start, "--to", end, "--output", str(path), *extra)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return path, lines


def test_consecutive_periods_neither_overlap_nor_leave_a_gap(tmp_path):
    # Committed first, created after midnight; committed second, created before midnight.
    record(1, now=datetime.datetime(2026, 3, 2, 0, 1, tzinfo=datetime.UTC))
    record(2, now=datetime.datetime(2026, 3, 1, 23, 59, tzinfo=datetime.UTC))
    record(3, now=datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC))
    day1, lines1 = _export(tmp_path, "1.jsonl", "2026-03-01T00:00Z", "2026-03-02T00:00Z")
    day2, lines2 = _export(tmp_path, "2.jsonl", "2026-03-02T00:00Z", "2026-03-03T00:00Z")

    assert [line["sequence"] for line in lines1[1:-1]] == [1, 2]
    assert [line["sequence"] for line in lines2[1:-1]] == [3]
    code, out = run_script(day2, "--prev-hash", lines1[-1]["last_hash"])
    assert code == 0, out

    # --after-sequence: the next file starts just after the previous file's last sequence.
    _path, after = _export(
        tmp_path, "3.jsonl", "2026-03-01T00:00Z", "2026-03-03T00:00Z", "--after-sequence", "1"
    )
    assert [line["sequence"] for line in after[1:-1]] == [2, 3]
    assert after[0]["prev_hash"] == lines1[1]["hash"]
    with pytest.raises(CommandError, match="--after-sequence 9: the chain has events 1 to 3"):
        _export(tmp_path, "4.jsonl", "2026-03-01", "2026-03-03", "--after-sequence", "9")
    assert not (tmp_path / "4.jsonl").exists()


def test_a_whole_number_float_is_not_mistaken_for_tampering(tmp_path):
    event = record(1, data={"x": 1e23, "y": [2.0, -1e300], "z": 0.1})
    assert verify_output() == f"1 events, chain intact, head {event.hash or chain_head()[1]}"
    path, _lines = _export(tmp_path, "floats.jsonl", "2000-01-01", "2100-01-01")
    code, out = run_script(path)
    assert code == 0, out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda lines: lines.__setitem__(1, {**lines[1], "content": [1, 2]}), "not an object"),
        (lambda lines: lines.__setitem__(1, ["an", "array"]), "line 2 is not a JSON object"),
        (lambda lines: lines.__setitem__(0, 42), "line 1 is not a JSON object"),
        (lambda lines: lines.__setitem__(1, {**lines[1], "sequence": None}), "sequence expected"),
    ],
)
def test_the_stand_alone_script_names_a_malformed_line_in_one_line(tmp_path, change, message):
    record(1)
    path, lines = _export(tmp_path, "one.jsonl", "2000-01-01", "2100-01-01")
    change(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out = run_script(path)
    assert code == 1
    assert message in out
    assert "\n" not in out and "Traceback" not in out


def _verify(*args):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("audit_verify", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_a_truncated_trail_is_reported_against_the_anchor_kept_outside():
    for n in range(3):
        record(n)
    sequence, head_hash = chain_head()
    anchor = f"{sequence}:{head_hash}"
    assert _verify("--anchor", anchor).startswith("3 events, chain intact")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM entitlements_auditevent"
            if connection.vendor == "sqlite"
            else "TRUNCATE entitlements_auditevent, entitlements_auditchainhead"
        )
    # Without the anchor an empty trail is an intact chain; with it, the cut is named.
    assert _verify().startswith("0 events, chain intact")
    with pytest.raises(CommandError, match="sequence 3: the anchor kept earlier"):
        _verify("--anchor", anchor)
    record(9)
    with pytest.raises(CommandError, match=f"sequence 3: the anchor.*expected {head_hash}"):
        _verify("--anchor", anchor)
    with pytest.raises(CommandError, match="--anchor must be SEQUENCE:HASH"):
        _verify("--anchor", "3-abc")
