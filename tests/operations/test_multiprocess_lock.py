"""The schedule lock that lets only one beat send the periodic work."""

import pytest
from django.db import connection

from config.beat import ScheduleLock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres_only
def test_only_one_holder_at_a_time_and_the_lock_is_free_again_once_its_session_ends():
    first, second = ScheduleLock(), ScheduleLock()
    try:
        assert first.acquire()
        assert not second.acquire()
        assert first.acquire()  # a holder keeps it, tick after tick
        first.release()
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


@pytest.mark.postgres_only
def test_a_holder_whose_session_was_ended_by_the_server_no_longer_claims_the_lock():
    holder, other = ScheduleLock(), ScheduleLock()
    try:
        assert holder.acquire()
        with holder.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with connection.cursor() as cursor:  # as a database restart would
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert not holder.acquire()  # it notices before its next tick sends anything
        assert other.acquire()
        assert not holder.acquire()
    finally:
        holder.release()
        other.release()


def test_the_lock_is_exclusive_on_postgresql_and_the_one_demo_beat_always_holds_it_on_sqlite():
    lock = ScheduleLock()
    assert lock.exclusive == (connection.vendor == "postgresql")
    if not lock.exclusive:
        assert lock.acquire() and lock.acquire()
        assert ScheduleLock().acquire()
        assert lock.connection is None  # nothing held open on the demo's file
