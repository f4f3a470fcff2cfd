"""The review's findings on the audit chain (each fixed, each pinned here)."""

import pytest
from django.db import IntegrityError, connection, transaction

from entitlements.models import AuditEvent
from entitlements.models.audit import chain_head, link_hash
from tests.audit_chain.test_chain import record, verify_output
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
