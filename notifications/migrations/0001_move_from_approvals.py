# The outbox moves from approvals to notifications. The table stays where it is: this
# migration only tells Django's state that the model now belongs here (approvals 0006 takes
# it out of approvals' state), so no row is copied or lost. 0004 renames the table.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('approvals', '0005_notification_sending_lease'),
        ('entitlements', '0002_general_catalog'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('created', models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name='created')),
                        ('modified', models.DateTimeField(auto_now=True, verbose_name='modified')),
                        ('kind', models.CharField(choices=[('approvalRequired', 'Approve or deny request'), ('approvalReminder', 'Reminder to approve or deny'), ('approvalForwarded', 'Forwarded request'), ('approvalExpired', 'Request expired (approver)'), ('approvalDecidedByOther', 'Decided by another approver'), ('stageApproved', 'Request approved at a stage'), ('requestDenied', 'Request denied'), ('requestExpired', 'Request expired'), ('accessDelivered', 'Access delivered'), ('accessExpiring', 'Access ends soon'), ('accessEnded', 'Access ended'), ('reviewStarted', 'Access review started'), ('reviewReminder', 'Access review reminder'), ('reviewEnding', 'Access review ends soon')], max_length=32, verbose_name='kind')),
                        ('dedupe_key', models.CharField(max_length=200, unique=True, verbose_name='key')),
                        ('context', models.JSONField(blank=True, default=dict, verbose_name='details')),
                        ('state', models.CharField(choices=[('pending', 'Waiting to be sent'), ('sending', 'Being sent'), ('sent', 'Sent'), ('failed', 'Failed')], default='pending', max_length=16, verbose_name='state')),
                        ('lease_expires', models.DateTimeField(blank=True, null=True, verbose_name='claimed until')),
                        ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                        ('error', models.TextField(blank=True, verbose_name='last error')),
                        ('subject', models.CharField(blank=True, max_length=400, verbose_name='subject')),
                        ('sent_datetime', models.DateTimeField(blank=True, null=True, verbose_name='sent')),
                        ('assignment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='entitlements.assignment')),
                        ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                        ('request', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='entitlements.assignmentrequest')),
                        ('stage', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='approvals.requestapprovalstage')),
                    ],
                    options={
                        'verbose_name': 'notification',
                        'ordering': ['-created'],
                        'db_table': 'approvals_notification',
                        'indexes': [
                            models.Index(condition=models.Q(('state', 'pending')), fields=['created'], name='notification_pending_idx'),
                            models.Index(condition=models.Q(('state', 'sending')), fields=['lease_expires'], name='notification_sending_lease_idx'),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
