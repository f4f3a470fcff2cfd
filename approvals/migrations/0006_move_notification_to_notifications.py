# The outbox now belongs to the notifications app (its 0001 took the model over with the
# table as it is); approvals only forgets it. No database change, so no row is lost.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0005_notification_sending_lease'),
        ('notifications', '0001_move_from_approvals'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Notification')],
            database_operations=[],
        ),
    ]
