"""Periodic approval work; each task calls one service and is safe to run twice."""

from celery import shared_task

from entitlements.services.requests import requests_start_due

from .services import stages_escalate_due, stages_expire_due


@shared_task
def escalate_due_stages():
    return stages_escalate_due()


@shared_task
def expire_due_stages():
    return stages_expire_due()


@shared_task
def start_due_requests():
    return requests_start_due()
