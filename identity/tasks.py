"""Background work of the identity lifecycle: thin tasks that take ids and call one service.

Each task is safe to run twice.
"""

from celery import shared_task

from . import guests, importing


@shared_task(acks_late=True)
def apply_guest_lifecycle(user_ids):
    """These guests' assignment ended: block or remove them as the settings say."""
    return guests.guests_lifecycle_apply(user_ids=user_ids)


@shared_task(acks_late=True)
def sweep_guest_lifecycle():
    """The safety net: guests whose last assignment ended unnoticed, and blocked guests due
    for removal."""
    return guests.guests_lifecycle_sweep()


@shared_task(acks_late=True)
def run_due_directory_imports():
    """Enqueue a run of each directory import whose schedule says it is due."""
    return importing.directory_imports_enqueue_due()


@shared_task(acks_late=True)
def run_directory_import(import_id):
    """One run of one directory import (refused quietly while another run holds it)."""
    return importing.directory_import_run_by_id(import_id=import_id)
