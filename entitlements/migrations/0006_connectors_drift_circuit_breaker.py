"""Connectors: a group of an LDAP or SCIM system needs no local group; drift reports and
each resource's drift mode; the circuit breaker's last probe; a refused grant is marked."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0002_application_owners"),
        ("entitlements", "0005_resource_connected_system_required"),
    ]

    operations = [
        migrations.CreateModel(
            name="DriftItem",
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
                    "key",
                    models.CharField(
                        help_text="The holder's key in the system (mail, DN...).",
                        max_length=512,
                        verbose_name="member",
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("missingInTarget", "Missing in the system"),
                            ("extraInTarget", "Extra in the system"),
                        ],
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                ("detected", models.DateTimeField(verbose_name="detected")),
                ("resolved", models.DateTimeField(blank=True, null=True, verbose_name="resolved")),
                ("resolution", models.TextField(blank=True, verbose_name="resolution")),
            ],
            options={
                "verbose_name": "drift item",
                "ordering": ["report", "kind", "key"],
            },
        ),
        migrations.CreateModel(
            name="DriftReport",
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
                ("started", models.DateTimeField(verbose_name="started")),
                ("finished", models.DateTimeField(blank=True, null=True, verbose_name="finished")),
                (
                    "roles_checked",
                    models.PositiveIntegerField(default=0, verbose_name="resource roles checked"),
                ),
                (
                    "missing_count",
                    models.PositiveIntegerField(default=0, verbose_name="missing in the system"),
                ),
                (
                    "extra_count",
                    models.PositiveIntegerField(default=0, verbose_name="extra in the system"),
                ),
                (
                    "corrected_count",
                    models.PositiveIntegerField(default=0, verbose_name="corrected"),
                ),
                ("error", models.TextField(blank=True, verbose_name="error")),
            ],
            options={
                "verbose_name": "drift report",
                "ordering": ["-started"],
            },
        ),
        migrations.RemoveConstraint(
            model_name="resource",
            name="resource_points_at_its_origin_object",
        ),
        migrations.AddField(
            model_name="assignmentresourcerole",
            name="refused",
            field=models.BooleanField(
                default=False,
                help_text="The system definitely refused the last attempt; not retried by itself.",
                verbose_name="refused",
            ),
        ),
        migrations.AddField(
            model_name="connectedsystem",
            name="probe_datetime",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="While unhealthy, the last time one call was let through to see if it answers.",
                null=True,
                verbose_name="last probe",
            ),
        ),
        migrations.AddField(
            model_name="resource",
            name="drift_mode",
            field=models.CharField(
                choices=[
                    ("reportOnly", "Report only"),
                    ("enforce", "Enforce (add the missing, remove the extra)"),
                ],
                default="reportOnly",
                help_text="For a resource of a connected system: report its members that differ from the product's assignments, or also correct them.",
                max_length=16,
                verbose_name="drift",
            ),
        ),
        migrations.AddConstraint(
            model_name="resource",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        models.Q(("origin_system", "AadApplication"), _negated=True),
                        ("application__isnull", False),
                        _connector="OR",
                    ),
                    models.Q(
                        models.Q(("origin_system", "SharePointOnline"), _negated=True),
                        ("site__isnull", False),
                        _connector="OR",
                    ),
                ),
                name="resource_points_at_its_origin_object",
                violation_error_message="Choose the group, application or site.",
            ),
        ),
        migrations.AddField(
            model_name="driftitem",
            name="resource_role",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="drift_items",
                to="entitlements.resourcerole",
                verbose_name="resource role",
            ),
        ),
        migrations.AddField(
            model_name="driftreport",
            name="system",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="drift_reports",
                to="entitlements.connectedsystem",
                verbose_name="connected system",
            ),
        ),
        migrations.AddField(
            model_name="driftitem",
            name="report",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="entitlements.driftreport",
            ),
        ),
        migrations.AddIndex(
            model_name="driftreport",
            index=models.Index(fields=["system", "-started"], name="drift_report_system_idx"),
        ),
    ]
