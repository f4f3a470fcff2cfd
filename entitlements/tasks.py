"""Background work of the assignment lifecycle: thin tasks that take ids and call one service.

Each task is safe to run twice. Deliveries and revocations are enqueued on commit by the
services; ``assignments_reconcile`` enqueues them again if the broker lost them. A retryable
connector failure (a timeout too) is recorded on the grant by the service, then the task
retries with exponential backoff and jitter (``delivery.retry_countdown``), or after the
system's Retry-After; a refusal is not retried, nor is work waiting for an unhealthy system
(its recovery enqueues it). The admin can "Reprocess" once the retries are used up.
"""

from dataclasses import asdict

from celery import shared_task

from entitlements.connectors import ConnectorError
from entitlements.services import (
    automatic,
    bulk,
    delivery,
    drift,
    eligibility,
    ending,
    reconciliation,
)

RETRYING = {"acks_late": True, "bind": True, "max_retries": 10}


def _retry_if_worth_it(task, outcome, limit=None):
    """Retry the task when some failure may succeed later; a refusal alone is final."""
    if outcome.ok or not outcome.retryable:
        return outcome.done
    error = ConnectorError("; ".join(outcome.failed[:limit]))
    countdown = delivery.retry_countdown(task.request.retries, outcome.retry_after)
    raise task.retry(exc=error, countdown=countdown)


@shared_task(**RETRYING)
def deliver_assignment(self, assignment_id):
    return _retry_if_worth_it(self, delivery.assignment_deliver(assignment_id=assignment_id))


@shared_task(**RETRYING)
def deliver_assignments(self, assignment_ids):
    outcome = delivery.assignments_deliver(assignment_ids=assignment_ids)
    return _retry_if_worth_it(self, outcome, limit=20)


@shared_task(**RETRYING)
def revoke_assignment_grants(self, assignment_id):
    return _retry_if_worth_it(self, delivery.assignment_revoke(assignment_id=assignment_id))


@shared_task(**RETRYING)
def revoke_grants_batch(self, assignment_ids):
    outcome = delivery.assignments_revoke(assignment_ids=assignment_ids)
    return _retry_if_worth_it(self, outcome, limit=20)


@shared_task(acks_late=True)
def expire_due_assignments():
    return ending.assignments_expire_due()


@shared_task(acks_late=True)
def remove_ineligible_assignments():
    return eligibility.assignments_remove_ineligible()


@shared_task(acks_late=True)
def reconcile_assignments():
    return reconciliation.assignments_reconcile()


@shared_task(acks_late=True)
def resume_connected_system(system_id):
    """A system answers again: enqueue the work that waited for it."""
    return reconciliation.connected_system_resume(system_id=system_id)


@shared_task(acks_late=True)
def reconcile_drift():
    """Enqueue one drift reconciliation per enabled connected system that is due."""
    return drift.drift_reconcile_due()


@shared_task(acks_late=True)
def reconcile_system_drift(system_id):
    return drift.system_drift_reconcile(system_id=system_id).pk


@shared_task(acks_late=True)
def users_reevaluate(user_ids):
    """Some people changed in the directory: re-evaluate their access."""
    return asdict(automatic.users_reevaluate(user_ids=user_ids))


@shared_task(acks_late=True)
def evaluate_automatic_policy(policy_id):
    """An automatic policy's rule changed: apply it to everyone."""
    return asdict(automatic.automatic_policies_evaluate(policies=[policy_id]))


@shared_task(acks_late=True)
def evaluate_automatic_policies():
    """The schedule: apply every automatic policy to everyone."""
    return asdict(automatic.automatic_policies_evaluate())


@shared_task(acks_late=True)
def run_bulk_job(job_id, batch_size=None):
    """A bulk direct assignment or removal was started in the admin: work through it."""
    job = bulk.bulk_job_run(job_id=job_id, batch_size=batch_size)
    return {"state": job.state, "processed": job.processed}
