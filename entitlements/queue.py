"""Enqueueing background work so that a broker outage never fails the user's action.

The database row that describes the work (a pending grant, a pending notification, a due
assignment) is the source of truth; the message only says "look now". If the broker is down,
the message is dropped with a warning and the reconciler finds the row again later.
"""

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task, *args, countdown=None, **kwargs):
    """Send ``task`` now; on a broker error log it and return None instead of raising."""
    if task.app.conf.task_always_eager:
        # Tests and one-process setups run the task here; its errors are real errors.
        return task.apply_async(args=args, kwargs=kwargs)
    try:
        return task.apply_async(args=args, kwargs=kwargs, countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure must not undo committed work
        logger.warning(
            "Could not enqueue %s%r (%s); the reconciler will pick it up.", task.name, args, exc
        )
        return None


def enqueue_named(name, *args, countdown=None, **kwargs):
    """``enqueue`` the task registered under ``name``: for services that the task calls."""
    return enqueue(current_app.tasks[name], *args, countdown=countdown, **kwargs)


def enqueue_on_commit(task, *args, countdown=None, **kwargs):
    """Send ``task`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue(task, *args, countdown=countdown, **kwargs))
