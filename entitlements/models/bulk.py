"""Bulk assignment and removal jobs: what the admin previewed, started and got back."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User

from .catalogs import AccessPackage
from .policies import AssignmentPolicy


class BulkJob(BaseModel):
    """One bulk direct assignment or removal on one package: its input, progress and report."""

    class Kind(models.TextChoices):
        ADD = "add", _("Assignment")
        REMOVE = "remove", _("Removal")

    class State(models.TextChoices):
        PREVIEW = "preview", _("Preview")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    OPEN_STATES = (State.QUEUED, State.RUNNING)

    kind = models.CharField(_("kind"), max_length=8, choices=Kind)
    state = models.CharField(_("state"), max_length=8, choices=State, default=State.PREVIEW)
    access_package = models.ForeignKey(
        AccessPackage, on_delete=models.CASCADE, related_name="bulk_jobs"
    )
    assignment_policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(User, on_delete=models.CASCADE, related_name="bulk_jobs")
    schedule_start = models.DateTimeField(_("starts"), null=True, blank=True)
    schedule_end = models.DateTimeField(_("ends"), null=True, blank=True)
    justification = models.TextField(_("justification"), blank=True)
    notify = models.BooleanField(_("notify the users"), default=False)
    include_out_of_scope = models.BooleanField(
        _("include people outside the policy's scope"), default=False
    )
    # [user id, ...] the preview found acceptable; the run checks each again.
    user_ids = models.JSONField(default=list, blank=True)
    # [{"row": n, "email": ..., "name": ..., "outcome": "done" | "refused", "reason": ...}]
    results = models.JSONField(default=list, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # The report's counts, kept beside ``results`` so the progress poll need not read it.
    done_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("bulk job")

    @property
    def percent(self):
        return 100 if not self.total else round(100 * self.processed / self.total)

    @property
    def is_open(self):
        return self.state in self.OPEN_STATES

    def counts(self):
        return {"done": self.done_count, "refused": self.refused_count}

    def add_results(self, rows):
        """Append report rows and count them."""
        done = sum(1 for r in rows if r["outcome"] == "done")
        self.results = [*self.results, *rows]
        self.done_count += done
        self.refused_count += len(rows) - done
