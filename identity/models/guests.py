"""What the guest lifecycle did to each external user whose last assignment ended."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User


class GuestState(models.TextChoices):
    BLOCKED = "blocked", _("Sign-in blocked")
    DELETED = "deleted", _("Removed")
    CANCELED = "canceled", _("Removal canceled")


class GuestLifecycle(BaseModel):
    """One guest the lifecycle acted on: sign-in blocked, then perhaps removed."""

    State = GuestState

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="guest_lifecycle", verbose_name=_("guest")
    )
    state = models.CharField(_("state"), max_length=16, choices=State, default=State.BLOCKED)
    # The end of the last assignment this row acted on: a later end is news, this one is not.
    last_assignment_ended = models.DateTimeField(_("last assignment ended"))
    blocked_at = models.DateTimeField(_("sign-in blocked"))
    deleted_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("guest lifecycle")
        verbose_name_plural = _("guest lifecycle")
        indexes = [
            # the sweep's "blocked guests due for removal": state=blocked, blocked_at <= cutoff
            models.Index(fields=["state", "blocked_at"], name="guest_lifecycle_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                name="guest_lifecycle_deleted_has_time",
                condition=~Q(state=GuestState.DELETED) | Q(deleted_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.user.display_name}: {self.get_state_display()}"
