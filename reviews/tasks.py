"""Periodic access review work: thin tasks that call one service each; safe to run twice.

Beat runs ``schedule_due_reviews``, ``send_review_reminders`` and ``complete_due_reviews``;
the services enqueue ``apply_review_results`` on commit.
"""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def schedule_due_reviews():
    return services.reviews_schedule_due()


@shared_task(acks_late=True)
def send_review_reminders():
    return services.reviews_send_reminders()


@shared_task(acks_late=True)
def complete_due_reviews():
    return services.reviews_complete_due()


@shared_task(acks_late=True)
def apply_review_results(instance_id):
    return services.review_instance_apply_results(instance_id=instance_id)
