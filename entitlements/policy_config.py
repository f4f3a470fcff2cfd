"""A policy saved whole: its settings, subject sets, approval stages with their approvers, and
questions with their choices and translations, checked together and saved in one audited
transaction.

The admin edits a policy page by page (the policy with its subjects, then each stage with its
approvers, then each question with its choices); the API sends it in one body. Both run the
same checks: each row's ``clean()`` and the cross-object checks of ``validation``. Every row
is saved or deleted through ``config_save`` / ``config_delete``, so each change is audited
as it is from the admin.

Replacing a policy keeps what did not change: a stage is matched by its number, a question
by its id, a subject, approver, choice or translation by what it says; only the rows that
differ are changed, created or deleted. A stage or question that requests already used
cannot be deleted (``StateConflict``).
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from . import validation
from .configuration import config_delete, config_save
from .errors import StateConflict
from .models import (
    ApprovalStage,
    Channel,
    Question,
)


@dataclass
class StagePlan:
    """A stage as it should be, with its approver sets (unsaved StageApproverSet rows)."""

    stage: ApprovalStage
    approvers: list = field(default_factory=list)


@dataclass
class QuestionPlan:
    """A question as it should be, with its choices and translations (unsaved rows)."""

    question: Question
    choices: list = field(default_factory=list)
    localizations: list = field(default_factory=list)


class PolicyInvalid(ValidationError):
    """What is wrong with a policy body; ``message_dict`` keys are paths into it:
    ``field``, ``subject_sets.0.user``, ``stages.1.approvers.0.subject_type``,
    ``questions.0.choices.2.actual_value`` (model field names, indexes into the lists given)."""


def _clean(obj, prefix, errors, exclude=()):
    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            key = f"{prefix}{name}" if name != "__all__" else prefix.rstrip(".")
            errors.setdefault(key, []).extend(messages)


def _check(check, prefix, errors, *args, **kwargs):
    try:
        check(*args, **kwargs)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault(f"{prefix}{name}", []).extend(messages)


def _subject_key(row):
    return (
        row.purpose,
        row.subject_type,
        row.user_id,
        row.group_id,
        row.connected_organization_id,
        row.manager_level,
        getattr(row, "membership_rule", ""),  # policy subject sets only
    )


def _package_is_new(policy):
    package = policy._state.fields_cache.get("access_package")
    return package is not None and package._state.adding


def policy_check(policy, *, subject_sets, stages, questions):
    """Raise ``PolicyInvalid`` naming every problem of the policy as it would be saved."""
    errors = {}
    # A package created in the same change (the admin's guided flow) has no row to check yet.
    _clean(policy, "", errors, exclude=["access_package"] if _package_is_new(policy) else ())
    for i, subject in enumerate(subject_sets):
        subject.policy = policy
        _clean(subject, f"subject_sets.{i}.", errors, exclude=["policy"])
    if not errors:
        _check(validation.check_policy_subjects, "", errors, policy, subject_sets)
        _check(validation.check_policy_reviewers, "", errors, policy, subject_sets)
        _check(validation.check_policy_dates, "", errors, policy)

    _check(validation.check_stage_count, "", errors, policy, stages=[p.stage for p in stages])
    if policy.is_approval_required_for_add and not stages:
        # The admin saves stages after their policy and only warns; a whole policy saved at
        # once has no such step between, so it would be requestable and never approvable.
        errors.setdefault("is_approval_required_for_add", []).append(
            _(
                "Approval is required, but no approval stage is given: add a stage, or do not "
                "require approval."
            )
        )
    seen = []
    for i, plan in enumerate(stages):
        stage = plan.stage
        stage.policy = policy
        _clean(stage, f"stages.{i}.", errors, exclude=["policy"])
        _check(validation.check_stage_sequence, f"stages.{i}.", errors, stage, other_sequences=seen)
        seen.append(stage.sequence)
        for j, approver in enumerate(plan.approvers):
            approver.stage = stage
            _clean(approver, f"stages.{i}.approvers.{j}.", errors, exclude=["stage"])
        _check(validation.check_stage_approvers, f"stages.{i}.", errors, stage, plan.approvers)

    for i, plan in enumerate(questions):
        question = plan.question
        question.policy = policy
        _clean(question, f"questions.{i}.", errors, exclude=["policy"])
        values = set()
        for j, choice in enumerate(plan.choices):
            choice.question = question
            _clean(choice, f"questions.{i}.choices.{j}.", errors, exclude=["question"])
            if choice.actual_value in values:
                errors.setdefault(f"questions.{i}.choices.{j}.actual_value", []).append(
                    _("Two choices have the value “%(value)s”.") % {"value": choice.actual_value}
                )
            values.add(choice.actual_value)
        languages = set()
        for j, loc in enumerate(plan.localizations):
            loc.question = question
            _clean(loc, f"questions.{i}.localizations.{j}.", errors, exclude=["question"])
            if loc.language_code.lower() in languages:
                errors.setdefault(f"questions.{i}.localizations.{j}.language_code", []).append(
                    _("The question has two translations into “%(code)s”.")
                    % {"code": loc.language_code}
                )
            languages.add(loc.language_code.lower())
        _check(validation.check_question_choices, f"questions.{i}.", errors, question, plan.choices)
    if errors:
        raise PolicyInvalid(errors)


def _replace_rows(*, actor, channel, now, existing, wanted, key, copy):
    """Make the rows ``existing`` into ``wanted``: a wanted row whose ``key`` matches an
    existing one updates it (``copy`` moves the values over), the others are created, and
    existing rows nobody wants are deleted."""
    by_key = {}
    for row in existing:
        by_key.setdefault(key(row), []).append(row)
    kept = []
    for row in wanted:
        matches = by_key.get(key(row))
        if matches:
            current = matches.pop(0)
            copy(current, row)
            config_save(actor=actor, obj=current, channel=channel, now=now)
            kept.append(current)
        else:
            config_save(actor=actor, obj=row, channel=channel, now=now)
            kept.append(row)
    leftovers = [row for rows in by_key.values() for row in rows]
    if leftovers:
        config_delete(actor=actor, objs=leftovers, channel=channel, now=now)
    return kept


def _copy_fields(names):
    def copy(current, row):
        for name in names:
            setattr(current, name, getattr(row, name))

    return copy


def _no_copy(current, row):
    return None


STAGE_FIELDS = [
    "duration_before_automatic_denial",
    "is_approver_justification_required",
    "is_escalation_enabled",
    "duration_before_escalation",
    "quorum_mode",
    "quorum_count",
    "approvers_may_shorten",
]
QUESTION_FIELDS = [
    "sequence",
    "text",
    "question_type",
    "is_required",
    "is_answer_editable",
    "is_single_line_question",
    "regex_pattern",
    "format_hint",
    "is_multiple_selection_allowed",
]


def _approver_key(row):
    return (row.purpose, *_subject_key(row)[1:])


def policy_save(
    *, actor, policy, subject_sets, stages, questions, channel=Channel.SYSTEM, now=None
):
    """Create a policy, or replace one, with all its parts (see the module's docstring).

    ``subject_sets`` are PolicySubjectSet rows, ``stages`` StagePlan and ``questions``
    QuestionPlan items, all unsaved; a question whose ``pk`` is one of the policy's questions
    replaces that question. Raises ``PolicyInvalid`` or ``StateConflict`` and changes
    nothing when the policy cannot be saved so.
    """
    now = now or timezone.now()
    policy_check(policy, subject_sets=subject_sets, stages=stages, questions=questions)
    adding = policy._state.adding
    try:
        with transaction.atomic():
            config_save(actor=actor, obj=policy, channel=channel, now=now)
            old_subjects = [] if adding else list(policy.subject_sets.all())
            _replace_rows(
                actor=actor,
                channel=channel,
                now=now,
                existing=old_subjects,
                wanted=subject_sets,
                key=_subject_key,
                copy=_no_copy,
            )
            old_stages = [] if adding else list(policy.approval_stages.all())
            old_by_sequence = {stage.sequence: stage for stage in old_stages}
            for plan in stages:
                current = old_by_sequence.pop(plan.stage.sequence, None)
                if current is not None:
                    _copy_fields(STAGE_FIELDS)(current, plan.stage)
                    plan.stage = current
                config_save(actor=actor, obj=plan.stage, channel=channel, now=now)
                for approver in plan.approvers:
                    approver.stage = plan.stage
                _replace_rows(
                    actor=actor,
                    channel=channel,
                    now=now,
                    existing=[] if current is None else list(current.approver_sets.all()),
                    wanted=plan.approvers,
                    key=_approver_key,
                    copy=_no_copy,
                )
            if old_by_sequence:
                config_delete(
                    actor=actor, objs=list(old_by_sequence.values()), channel=channel, now=now
                )
            old_questions = {} if adding else {q.pk: q for q in policy.questions.all()}
            for plan in questions:
                current = old_questions.pop(plan.question.pk, None)
                if current is not None:
                    _copy_fields(QUESTION_FIELDS)(current, plan.question)
                    plan.question = current
                else:
                    plan.question = _fresh(plan.question)
                config_save(actor=actor, obj=plan.question, channel=channel, now=now)
                for row in (*plan.choices, *plan.localizations):
                    row.question = plan.question
                _replace_rows(
                    actor=actor,
                    channel=channel,
                    now=now,
                    existing=[] if current is None else list(current.choices.all()),
                    wanted=plan.choices,
                    key=lambda row: row.actual_value,
                    copy=_copy_fields(["sequence", "text"]),
                )
                _replace_rows(
                    actor=actor,
                    channel=channel,
                    now=now,
                    existing=[] if current is None else list(current.localizations.all()),
                    wanted=plan.localizations,
                    key=lambda row: row.language_code.lower(),
                    copy=_copy_fields(["language_code", "text"]),
                )
            if old_questions:
                config_delete(
                    actor=actor, objs=list(old_questions.values()), channel=channel, now=now
                )
    except ProtectedError:
        raise StateConflict(
            _(
                "A stage or question this change removes was used by requests already; keep "
                "it (same stage number, same question id), or create a new policy."
            )
        ) from None
    return policy


def _fresh(question):
    """A question the policy does not have yet gets an id of its own, whatever was sent."""
    copy = Question(**{name: getattr(question, name) for name in QUESTION_FIELDS})
    copy.policy = question.policy
    return copy


def policy_delete(*, actor, policy, channel=Channel.SYSTEM, now=None):
    """Delete a policy with its stages, subjects and questions; refused while requests or
    assignments use it."""
    try:
        with transaction.atomic():  # a savepoint: the refusal leaves the caller's work intact
            config_delete(actor=actor, objs=[policy], channel=channel, now=now)
    except ProtectedError:
        raise StateConflict(
            _(
                "The policy %(policy)s has requests or assignments; remove those first, or "
                "stop new requests by setting who may request to nobody."
            )
            % {"policy": policy.display_name}
        ) from None
