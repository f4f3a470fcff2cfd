"""The append-only audit trail."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User

from ..querysets import RestrictedQuerySet
from .catalogs import AccessPackage
from .lifecycle import AssignmentRequest

# --------------------------------------------------------------------------------------
# Audit trail
# --------------------------------------------------------------------------------------


class Channel(models.TextChoices):
    """Through which door an action came."""

    PORTAL = "portal", _("My Access")
    EMAIL = "email", _("Email link")
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    SYSTEM = "system", _("System")


class AuditEventQuerySet(RestrictedQuerySet):
    """Append-only: rows are added one by one and never changed or removed in bulk."""

    def update(self, **kwargs):
        raise TypeError("Audit events are append-only.")

    def delete(self):
        raise TypeError("Audit events are append-only.")


class AuditEvent(BaseModel):
    """One recorded transition: who did what to which object, from which state to which, and why."""

    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_display = models.CharField(_("actor"), max_length=320, blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel, default=Channel.SYSTEM)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64)
    before = models.CharField(_("before"), max_length=64, blank=True)
    after = models.CharField(_("after"), max_length=64, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    target = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    access_package = models.ForeignKey(
        AccessPackage,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    request = models.ForeignKey(
        AssignmentRequest,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    data = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = _("audit event")
        indexes = [
            models.Index(fields=["-created"], name="audit_created_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["target", "-created"], name="audit_target_idx"),
            models.Index(fields=["access_package", "-created"], name="audit_package_idx"),
            models.Index(fields=["request", "created"], name="audit_request_idx"),
        ]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_display or 'system'}: {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only.")
