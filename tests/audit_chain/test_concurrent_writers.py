"""20 writers on PostgreSQL, each in real transactions that also lock other rows, write
audit events at the same time: none deadlocks, and the chain is intact afterwards.

The trap (docs/audit.md): a writer that took the chain's lock while still taking other
locks would deadlock with a writer that holds one of those rows and waits for the chain.
Here every transaction takes business locks (in the application's one order: rows
ascending, then a parent) in random positions between its audit writes, and half of them
insert a row whose deferred foreign key takes a FOR KEY SHARE lock at COMMIT on a parent the
other half hold FOR UPDATE until their own commit."""

import random
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from entitlements.audit import audit_bulk, audit_event, audit_record
from entitlements.models import AuditEvent
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]
WRITERS = 20
TRANSACTIONS = 12
ROWS = 8


@pytest.fixture
def business_rows():
    require_postgres()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE audit_test_row (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("CREATE TABLE audit_test_parent (id int PRIMARY KEY)")
        cursor.execute(
            "CREATE TABLE audit_test_child (id serial PRIMARY KEY, parent_id int NOT NULL "
            "REFERENCES audit_test_parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        cursor.execute(
            "INSERT INTO audit_test_row SELECT g, 0 FROM generate_series(1, %s) g", [ROWS]
        )
        cursor.execute("INSERT INTO audit_test_parent SELECT generate_series(1, %s)", [ROWS])
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE audit_test_child, audit_test_parent, audit_test_row")


def one_transaction(rng, writer, n, inserts_children):
    """Audit events before, between and after business locks taken in random positions."""
    rows = sorted(rng.sample(range(1, ROWS + 1), rng.randint(1, 3)))
    steps = [("lock", row) for row in rows] + [("audit", None)] * rng.randint(1, 4)
    steps.append(("bulk", rng.randint(2, 30)))
    rng.shuffle(steps)
    # Business locks stay in ascending order among themselves (the application's rule);
    # only their position relative to the audit writes is random.
    locks = iter(rows)
    steps = [("lock", next(locks)) if kind == "lock" else (kind, arg) for kind, arg in steps]
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, arg in steps:
            if kind == "lock":
                cursor.execute("SELECT n FROM audit_test_row WHERE id = %s FOR UPDATE", [arg])
                cursor.execute("UPDATE audit_test_row SET n = n + 1 WHERE id = %s", [arg])
            elif kind == "audit":
                audit_record(action="test.concurrent", obj=(AuditEvent, f"{writer}-{n}"))
                written += 1
            else:
                audit_bulk(
                    [
                        audit_event(action="test.bulk", obj=(AuditEvent, f"{writer}-{n}-{i}"))
                        for i in range(arg)
                    ]
                )
                written += arg
        if inserts_children:
            # After the audit writes: its deferred check is queued behind theirs, and at
            # COMMIT waits for whoever holds that parent FOR UPDATE.
            cursor.execute(
                "INSERT INTO audit_test_child (parent_id) VALUES (%s)", [rng.randint(1, ROWS)]
            )
        else:
            # Held until COMMIT, where this writer then wants the chain: a writer that took
            # the chain before its foreign-key check on this parent would deadlock with it.
            cursor.execute(
                "SELECT id FROM audit_test_parent WHERE id = %s FOR UPDATE", [rng.randint(1, ROWS)]
            )
            audit_record(action="test.after_lock", obj=(AuditEvent, f"{writer}-{n}"))
            written += 1
    return written


def test_twenty_concurrent_writers_keep_the_chain_intact_without_deadlock(business_rows):
    start = threading.Barrier(WRITERS)
    written, errors = [], []

    def writer(number):
        rng = random.Random(number)
        try:
            start.wait(timeout=60)
            for n in range(TRANSACTIONS):
                written.append(one_transaction(rng, number, n, inserts_children=number % 2 == 0))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)

    assert not [thread for thread in threads if thread.is_alive()], "a writer is stuck"
    assert errors == []
    assert len(written) == WRITERS * TRANSACTIONS
    out = StringIO()
    call_command("audit_verify", stdout=out, stderr=StringIO())
    total = sum(written)
    assert out.getvalue().startswith(f"{total} events, chain intact, head ")
    assert AuditEvent.objects.filter(sequence__isnull=True).count() == 0
