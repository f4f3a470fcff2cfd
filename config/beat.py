"""Beat's scheduler: django-celery-beat's database scheduler, sending tasks only under a lock.

Exactly one beat may schedule the periodic work. A second beat started by mistake (a second
replica, a `worker -B` next to the beat container) would otherwise send every job twice. On
PostgreSQL the scheduler holds a session-level advisory lock on a connection of its own, kept
for the life of the process: PostgreSQL releases it the moment that connection ends, so a
beat that is killed or loses the database frees the schedule for another at once, and a
waiting beat takes over within ``LOCK_RETRY_SECONDS``. Before each tick the holder checks the
lock's connection still answers; a beat that lost it stops sending before another can start.

The lock's connection must reach PostgreSQL itself (or a PgBouncer in *session* mode): a
session lock through a transaction-mode pooler is not held by anybody.

SQLite runs the local demo, with one beat embedded in one worker: the lock is always held.
"""

import contextlib
import logging
import time

from django.db import connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key: one lock per database, meaning "the periodic schedule".
SCHEDULE_LOCK_KEY = 0x656E_7462_6561  # "entbea"
LOCK_RETRY_SECONDS = 5.0


class ScheduleLock:
    """The advisory lock on a connection of its own (Django's connection is closed by the
    scheduler between ticks, which would release a lock taken on it)."""

    def __init__(self, alias="default"):
        self.alias = alias
        self.connection = None

    @property
    def exclusive(self):
        return connections[self.alias].vendor == "postgresql"

    def acquire(self):
        """True when this process holds the lock (taking it if it is free)."""
        if not self.exclusive:
            return True
        try:
            if self.connection is not None:
                with self.connection.cursor() as cursor:
                    cursor.execute("SELECT 1")  # still ours: the session is alive
                return True
            wrapper = connections[self.alias]
            self.connection = wrapper.get_new_connection(wrapper.get_connection_params())
            self.connection.autocommit = True
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [SCHEDULE_LOCK_KEY])
                held = cursor.fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - the database is away: nobody holds it here
            logger.warning("Beat cannot reach the database for its lock: %s", type(exc).__name__)
            self.release()
            return False
        if not held:
            self.release()
        return held

    def release(self):
        if self.connection is not None:
            with contextlib.suppress(Exception):  # it may be gone already
                self.connection.close()  # the session's locks go with it
            self.connection = None


class LockedDatabaseScheduler(DatabaseScheduler):
    """A DatabaseScheduler whose tick sends nothing unless this beat holds the schedule lock."""

    def __init__(self, *args, **kwargs):
        self.schedule_lock = ScheduleLock()
        self.holding = False
        self._waiting_logged = 0.0
        super().__init__(*args, **kwargs)
        # Write each entry's last run as soon as it is sent, so a beat that takes over from
        # a killed one does not send again what the other already sent.
        self.sync_every_tasks = 1

    def tick(self, *args, **kwargs):
        if not self.schedule_lock.acquire():
            if self.holding:
                logger.warning("Beat lost the schedule lock; it sends nothing until it has it.")
                self.holding = False
            now = time.monotonic()
            if now - self._waiting_logged >= 60.0 or not self._waiting_logged:
                logger.info("Another beat holds the schedule lock; waiting.")
                self._waiting_logged = now
            return LOCK_RETRY_SECONDS
        if not self.holding:
            logger.info("Beat holds the schedule lock; scheduling.")
            self.holding = True
            self._waiting_logged = 0.0
            # Read the last runs the previous holder wrote, and rebuild the heap from them.
            self._dirty.clear()
            self._schedule = self.all_as_schedule()
            self._heap = None
        return super().tick(*args, **kwargs)

    def close(self):
        try:
            super().close()
        finally:
            self.schedule_lock.release()
