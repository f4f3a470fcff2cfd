# An email about an approval stage keeps the stage's id in ``about_id``, a plain column the
# approvals app reads back, instead of a foreign key from the outbox into approvals' table.
# 0003 copies the ids, 0004 drops the key; each in its own transaction, because PostgreSQL
# refuses to alter a table with foreign key checks still pending from an update.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0006_move_notification_to_notifications'),
        ('notifications', '0001_move_from_approvals'),
    ]

    operations = [
        migrations.AddField(
            model_name='notification',
            name='about_id',
            field=models.UUIDField(blank=True, null=True, verbose_name='about'),
        ),
    ]
