"""Background work of custom extensions: thin tasks that take ids and call one service.

Each is safe to run twice: sending claims the callout first, and the jobs select by state
and due time.
"""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def send_callout(callout_id):
    return services.callout_send(callout_id=callout_id)


@shared_task
def reconcile_callouts():
    return services.callouts_reconcile()


@shared_task
def time_out_callouts():
    return services.callouts_time_out()


@shared_task
def call_extensions_before_expiration():
    return services.callouts_before_expiration()
