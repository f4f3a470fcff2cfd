from django.db import migrations
from django.db.models import Exists, F, OuterRef


def stage_to_about(apps, schema_editor):
    Notification = apps.get_model('notifications', 'Notification')
    Notification.objects.filter(stage__isnull=False).update(about_id=F('stage_id'))


def about_to_stage(apps, schema_editor):
    Notification = apps.get_model('notifications', 'Notification')
    RequestApprovalStage = apps.get_model('approvals', 'RequestApprovalStage')
    stages = RequestApprovalStage.objects.filter(pk=OuterRef('about_id'))
    Notification.objects.filter(Exists(stages)).update(stage_id=F('about_id'))


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0006_move_notification_to_notifications'),
        ('notifications', '0002_about_id'),
    ]

    operations = [
        migrations.RunPython(stage_to_about, about_to_stage),
    ]
