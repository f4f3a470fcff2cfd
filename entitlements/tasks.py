"""Background work of the assignment lifecycle: thin tasks that take ids and call one service.

Each task is safe to run twice. Deliveries and revocations are enqueued on commit by the
services; ``assignments_reconcile`` enqueues them again if the broker lost them. A connector
failure (a timeout too) is recorded on the grant by the service, then raised here so Celery
retries with backoff; the admin can "Reprocess" once the retries are used up.
"""

from celery import shared_task

from entitlements.connectors import ConnectorError
from entitlements.services import delivery, eligibility, ending, reconciliation

RETRYING = {
    "acks_late": True,
    "autoretry_for": (ConnectorError,),
    "retry_backoff": 30,  # seconds, doubled on each retry
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": 10,
}


@shared_task(**RETRYING)
def deliver_assignment(assignment_id):
    outcome = delivery.assignment_deliver(assignment_id=assignment_id)
    if not outcome.ok:
        raise ConnectorError("; ".join(outcome.failed))


@shared_task(**RETRYING)
def deliver_assignments(assignment_ids):
    outcome = delivery.assignments_deliver(assignment_ids=assignment_ids)
    if not outcome.ok:
        raise ConnectorError("; ".join(outcome.failed[:20]))


@shared_task(**RETRYING)
def revoke_assignment_grants(assignment_id):
    outcome = delivery.assignment_revoke(assignment_id=assignment_id)
    if not outcome.ok:
        raise ConnectorError("; ".join(outcome.failed))


@shared_task(**RETRYING)
def revoke_grants_batch(assignment_ids):
    outcome = delivery.assignments_revoke(assignment_ids=assignment_ids)
    if not outcome.ok:
        raise ConnectorError("; ".join(outcome.failed[:20]))


@shared_task(acks_late=True)
def expire_due_assignments():
    return ending.assignments_expire_due()


@shared_task(acks_late=True)
def remove_ineligible_assignments():
    return eligibility.assignments_remove_ineligible()


@shared_task(acks_late=True)
def reconcile_assignments():
    return reconciliation.assignments_reconcile()
