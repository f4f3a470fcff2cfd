"""Drift: where a connected system's members differ from what the product's assignments say."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel

from .catalogs import ConnectedSystem, ResourceRole


class DriftReport(BaseModel):
    """One comparison of a connected system's groups with the product's assignments."""

    system = models.ForeignKey(
        ConnectedSystem,
        verbose_name=_("connected system"),
        on_delete=models.CASCADE,
        related_name="drift_reports",
    )
    started = models.DateTimeField(_("started"))
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    roles_checked = models.PositiveIntegerField(_("resource roles checked"), default=0)
    missing_count = models.PositiveIntegerField(_("missing in the system"), default=0)
    extra_count = models.PositiveIntegerField(_("extra in the system"), default=0)
    corrected_count = models.PositiveIntegerField(_("corrected"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started"]
        verbose_name = _("drift report")
        indexes = [models.Index(fields=["system", "-started"], name="drift_report_system_idx")]

    def __str__(self):
        return f"{self.system} at {self.started:%Y-%m-%d %H:%M}"


class DriftKind(models.TextChoices):
    MISSING_IN_TARGET = "missingInTarget", _("Missing in the system")
    EXTRA_IN_TARGET = "extraInTarget", _("Extra in the system")


class DriftItem(BaseModel):
    """One difference: a holder the product expects but the system lacks, or the reverse."""

    Kind = DriftKind

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="items")
    resource_role = models.ForeignKey(
        ResourceRole,
        verbose_name=_("resource role"),
        on_delete=models.CASCADE,
        related_name="drift_items",
    )
    key = models.CharField(
        _("member"), max_length=512, help_text=_("The holder's key in the system (mail, DN...).")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=DriftKind)
    detected = models.DateTimeField(_("detected"))
    resolved = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    kept = models.BooleanField(
        _("kept"),
        default=False,
        help_text=_("An extra member kept as a direct membership: not reported or removed again."),
    )

    class Meta:
        ordering = ["report", "kind", "key"]
        verbose_name = _("drift item")
        indexes = [
            # Which extra members of a role were kept (every drift run asks).
            models.Index(
                fields=["resource_role", "key"],
                condition=models.Q(kept=True),
                name="drift_item_kept_idx",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.key}"

    @property
    def can_be_kept(self):
        """An extra member not kept yet may be kept as a direct membership."""
        return self.kind == DriftKind.EXTRA_IN_TARGET and not self.kept
