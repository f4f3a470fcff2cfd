# After 0003 copied the stage ids: the foreign key into approvals goes, and the table takes
# the notifications app's name.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0003_about_from_stage'),
    ]

    operations = [
        migrations.RemoveField(model_name='notification', name='stage'),
        migrations.AlterModelTable(name='notification', table=None),
    ]
