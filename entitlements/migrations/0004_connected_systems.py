"""Connected systems: the built-in directory becomes a row, and every resource points at it.

The foreign key is added nullable and filled here; 0005 makes it required (in a migration of
its own, as PostgreSQL refuses to alter a table with deferred constraint checks pending).
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def create_builtin_system(apps, schema_editor):
    ConnectedSystem = apps.get_model("entitlements", "ConnectedSystem")
    Resource = apps.get_model("entitlements", "Resource")
    system, _created = ConnectedSystem.objects.get_or_create(
        kind="builtin", defaults={"name": "Built-in directory"}
    )
    Resource.objects.filter(connected_system__isnull=True).update(connected_system=system)


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0003_question_format_hint"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConnectedSystem",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "created",
                    models.DateTimeField(
                        default=django.utils.timezone.now, editable=False, verbose_name="created"
                    ),
                ),
                ("modified", models.DateTimeField(auto_now=True, verbose_name="modified")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("builtin", "Built-in directory"),
                            ("ldap", "LDAP server"),
                            ("scim", "SCIM 2.0 application"),
                        ],
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                ("name", models.CharField(max_length=256, unique=True, verbose_name="name")),
                (
                    "settings",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text=(
                            "Connection settings of its kind, e.g. the URL and a timeout in "
                            "seconds."
                        ),
                        verbose_name="settings",
                    ),
                ),
                (
                    "secret_reference",
                    models.CharField(
                        blank=True,
                        help_text=(
                            "The name of the environment variable, or the path of the file, "
                            "that holds the credential; never the credential itself."
                        ),
                        max_length=512,
                        verbose_name="secret reference",
                    ),
                ),
                ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                (
                    "last_success_datetime",
                    models.DateTimeField(blank=True, null=True, verbose_name="last success"),
                ),
                ("last_error", models.TextField(blank=True, verbose_name="last error")),
                (
                    "last_error_datetime",
                    models.DateTimeField(blank=True, null=True, verbose_name="last error at"),
                ),
                (
                    "consecutive_failures",
                    models.PositiveIntegerField(default=0, verbose_name="consecutive failures"),
                ),
            ],
            options={
                "verbose_name": "connected system",
                "ordering": ["name"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("kind", "builtin")),
                        fields=("kind",),
                        name="one_builtin_connected_system",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="assignmentresourcerole",
            name="claimed_by",
            field=models.CharField(blank=True, max_length=64, verbose_name="claimed by"),
        ),
        migrations.AddField(
            model_name="assignmentresourcerole",
            name="lease_expires",
            field=models.DateTimeField(blank=True, null=True, verbose_name="claim expires"),
        ),
        migrations.AddIndex(
            model_name="assignmentresourcerole",
            index=models.Index(
                condition=models.Q(("lease_expires__isnull", False)),
                fields=["lease_expires"],
                name="grant_lease_expires_idx",
            ),
        ),
        migrations.AddField(
            model_name="resource",
            name="connected_system",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="resources",
                to="entitlements.connectedsystem",
                verbose_name="connected system",
            ),
        ),
        migrations.RunPython(create_builtin_system, migrations.RunPython.noop),
    ]
