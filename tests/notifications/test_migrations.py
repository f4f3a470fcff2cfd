"""The outbox moved from approvals to notifications without losing a row."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.models import Notification, NotificationKind
from notifications.services import render_notification

BEFORE_THE_MOVE = [("approvals", "0005_notification_sending_lease"), ("notifications", None)]


def migrate(targets):
    executor = MigrationExecutor(connection)
    return executor.migrate(targets).apps


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_kept_and_still_sent(pending_stage, approver):
    sent = Notification.objects.create(
        kind=NotificationKind.APPROVAL_REQUIRED,
        recipient=approver,
        dedupe_key="written after the move",
        request=pending_stage.request,
        about_id=pending_stage.pk,
        state=Notification.State.SENT,
        attempts=1,
        subject="Action required",
    )
    try:
        old_apps = migrate(BEFORE_THE_MOVE)
        old = old_apps.get_model("approvals", "Notification")
        # The reverse migration put the stage back in its foreign key.
        assert old.objects.get(pk=sent.pk).stage_id == pending_stage.pk
        waiting = old.objects.create(
            kind=NotificationKind.APPROVAL_REQUIRED,
            recipient_id=approver.pk,
            dedupe_key="written before the move",
            request_id=pending_stage.request_id,
            stage_id=pending_stage.pk,
            context={"reason": "kept"},
        )
    finally:
        migrate(latest())

    assert Notification._meta.db_table == "notifications_notification"
    assert Notification.objects.count() == 2
    moved = Notification.objects.get(pk=waiting.pk)
    assert (moved.kind, moved.recipient, moved.request_id, moved.about_id) == (
        NotificationKind.APPROVAL_REQUIRED,
        approver,
        pending_stage.request_id,
        pending_stage.pk,
    )
    assert moved.state == Notification.State.PENDING
    assert moved.context == {"reason": "kept"}
    kept = Notification.objects.get(pk=sent.pk)
    assert (kept.state, kept.attempts, kept.subject) == (
        Notification.State.SENT,
        1,
        "Action required",
    )
    _subject, text, _html = render_notification(moved)
    assert "/approvals/email/decide/" in text  # the stage is found again for the links
