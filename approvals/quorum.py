"""Quorum stages: who a stage still needs before it is approved, and saying so in words.

A stage in ``anyOne`` mode (Graph's only mode) is decided by its first approval. In
``oneFromEach`` mode every primary approver entry of the policy stage (a user, a group, the
manager, ...) must approve through one of its people; one person's approval counts for every
entry they were resolved from, and a fallback or escalation approver (resolved from no
entry) stands in for all the entries still missing. In ``someOf`` mode ``quorum_count``
different people must approve, whichever way they became approvers (a delegate approving
on behalf of an approver counts as that approver, once). In every mode the first
denial decides the stage, and each person decides once.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from entitlements.models import QuorumMode, StageApproverSet, SubjectType

from .models import ReviewResult

SetPurpose = StageApproverSet.Purpose


def entry_label(entry):
    """An approver entry as the sentence "still needed: one from …" names it."""
    if entry.subject_type == SubjectType.GROUP_MEMBERS and entry.group_id:
        return entry.group.display_name
    if entry.subject_type == SubjectType.SINGLE_USER and entry.user_id:
        return entry.user.display_name
    return str(entry)


@dataclass
class QuorumProgress:
    """How far an open stage is from its quorum."""

    mode: str
    approved: list = field(default_factory=list)  # the people who approved, in order
    needed: int = 1  # approvals (people, or entries) the stage needs
    done: int = 0  # of those, how many are there
    missing_entries: list = field(default_factory=list)  # labels, oneFromEach only

    @property
    def is_met(self):
        return self.done >= self.needed

    @property
    def sentence(self):
        """ "1 of 2 approvals; still needed: one from Security." in words ("" for anyOne)."""
        if self.mode == QuorumMode.ANY_ONE:
            return ""
        counts = ngettext(
            "%(done)s of %(needed)s approval", "%(done)s of %(needed)s approvals", self.needed
        ) % {"done": self.done, "needed": self.needed}
        if self.is_met:
            return _("%(counts)s: complete.") % {"counts": counts}
        if self.mode == QuorumMode.ONE_FROM_EACH:
            still = ", ".join(
                _("one from %(entry)s") % {"entry": label} for label in self.missing_entries
            )
        else:
            more = self.needed - self.done
            still = ngettext("%(n)s more approval", "%(n)s more approvals", more) % {"n": more}
        return _("%(counts)s; still needed: %(still)s.") % {"counts": counts, "still": still}


@dataclass(frozen=True)
class Entry:
    """A primary approver entry as a quorum stage counts it: its id and its name."""

    pk: str
    label: str


@dataclass(frozen=True)
class StageRule:
    """What a stage needs: its quorum mode, the number (someOf) and the entries (oneFromEach)."""

    quorum_mode: str
    quorum_count: int | None = None
    entries: tuple = ()

    @property
    def is_quorum(self):
        return self.quorum_mode != QuorumMode.ANY_ONE


def rule_of_policy_stage(policy_stage):
    """The rule ``policy_stage`` gives a stage opening now."""
    entries = ()
    if policy_stage.quorum_mode == QuorumMode.ONE_FROM_EACH:
        entries = tuple(Entry(str(e.pk), entry_label(e)) for e in primary_entries(policy_stage))
    return StageRule(policy_stage.quorum_mode, policy_stage.quorum_count, entries)


def quorum_rule_fields(policy_stage):
    """The fields of a request stage opening now that keep the rule ``policy_stage`` gives."""
    rule = rule_of_policy_stage(policy_stage)
    return {
        "quorum_mode": rule.quorum_mode,
        "quorum_count": rule.quorum_count,
        "quorum_entries": [{"pk": e.pk, "label": e.label} for e in rule.entries],
    }


def rule_of(stage):
    """The rule of request stage ``stage``, as kept when it opened (a stage opened before
    rules were kept: its policy stage's now)."""
    if not stage.quorum_mode:
        return rule_of_policy_stage(stage.policy_stage)
    entries = tuple(Entry(e["pk"], e["label"]) for e in stage.quorum_entries)
    return StageRule(stage.quorum_mode, stage.quorum_count, entries)


def requirement_sentence(rule):
    """What a quorum stage needs, in words, before anyone decided ("" for anyOne)."""
    if rule.quorum_mode == QuorumMode.ONE_FROM_EACH:
        labels = ", ".join(entry.label for entry in rule.entries)
        return _("This stage needs one approval from each of: %(entries)s.") % {"entries": labels}
    if rule.quorum_mode == QuorumMode.SOME_OF:
        count = rule.quorum_count or 1
        return ngettext(
            "This stage needs %(n)s approval.",
            "This stage needs %(n)s approvals from different people.",
            count,
        ) % {"n": count}
    return ""


def primary_entries(policy_stage):
    """The policy stage's primary approver entries, in the order they were added."""
    return [
        entry
        for entry in policy_stage.approver_sets.select_related("group", "user").order_by("created")
        if entry.purpose == SetPurpose.PRIMARY
    ]


def progress_of(*, rule, approvers):
    """The progress of a stage needing ``rule`` with these StageApprover rows (their
    decisions as recorded)."""
    approved = [row for row in approvers if row.decision == ReviewResult.APPROVED]
    progress = QuorumProgress(mode=rule.quorum_mode, approved=[r.user for r in approved])
    if rule.quorum_mode == QuorumMode.SOME_OF:
        progress.needed = rule.quorum_count or 1
        # An approver and their delegate are one say, whichever of them approved.
        progress.done = len({row.on_behalf_of_id or row.user_id for row in approved})
    elif rule.quorum_mode == QuorumMode.ONE_FROM_EACH:
        progress.needed = max(len(rule.entries), 1)
        if any(not row.approver_set_ids for row in approved):
            # A fallback or escalation approver stands in for every entry.
            progress.done = progress.needed
        else:
            covered = {pk for row in approved for pk in row.approver_set_ids}
            missing = [entry for entry in rule.entries if entry.pk not in covered]
            progress.done = progress.needed - len(missing)
            progress.missing_entries = [entry.label for entry in missing]
    else:
        progress.done = min(len(approved), 1)
    return progress


def stage_progress(stage):
    """The progress of one request stage, read from its approvers' rows."""
    approvers = list(stage.approvers.select_related("user"))
    return progress_of(rule=rule_of(stage), approvers=approvers)
