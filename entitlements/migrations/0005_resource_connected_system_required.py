"""Every resource now lives in a connected system (the built-in directory unless told)."""

import django.db.models.deletion
from django.db import migrations, models

import entitlements.models.catalogs


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0004_connected_systems"),
    ]

    operations = [
        migrations.AlterField(
            model_name="resource",
            name="connected_system",
            field=models.ForeignKey(
                default=entitlements.models.catalogs.builtin_system_id,
                help_text="Where the resource lives; its connector grants and revokes the roles.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="resources",
                to="entitlements.connectedsystem",
                verbose_name="connected system",
            ),
        ),
    ]
