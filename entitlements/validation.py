"""Checks that span several objects of the configuration: stages and their approvers, a
package and the roles it grants, a question and its choices.

Each ``check_*`` raises ``ValidationError`` keyed by the field to correct, so admin forms,
formsets and API serializers show the same message next to the same field. Each
``*_warnings`` returns sentences about configurations that work but may surprise.
Checks of one object alone (an expiry of zero, a pattern that does not compile, escalation
after the deadline) live in the model's ``clean()``, which admin and API forms also run.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import GroupMembership

from .models import (
    RELATIVE_SUBJECT_TYPES,
    AllowedTargetScope,
    ApprovalStage,
    AssignmentPolicy,
    ExpirationType,
    PolicySubjectSet,
    Question,
    QuorumMode,
    StageApproverSet,
    SubjectType,
)

Purpose = StageApproverSet.Purpose


def check_stage_count(policy, *, stages):
    """A policy has at most three approval stages; ``stages`` is what it would have."""
    if len(stages) > ApprovalStage.MAX_STAGES:
        raise ValidationError(
            {
                "policy": _(
                    "This policy would have %(n)s approval stages; a policy has at most three."
                )
                % {"n": len(stages)}
            }
        )


def check_stage_sequence(stage, *, other_sequences):
    """Stage numbers are unique within a policy."""
    if stage.sequence in set(other_sequences):
        raise ValidationError(
            {"sequence": _("This policy already has a stage %(n)s.") % {"n": stage.sequence}}
        )


def _purposes(approver_sets):
    return {a.purpose for a in approver_sets}


def check_stage_approvers(stage, approver_sets):
    """A stage needs approvers, and a stage that escalates needs escalation approvers.

    ``approver_sets`` are the stage's StageApproverSet rows as they would be (saved or not).
    """
    errors = {}
    purposes = _purposes(approver_sets)
    if Purpose.PRIMARY not in purposes:
        errors["approver_sets"] = _(
            "Approvers: stage %(n)s has no approver. Add at least one approver "
            "(a user, a group or the requestor's manager) with 'as' set to Approver."
        ) % {"n": stage.sequence}
    if stage.is_escalation_enabled and Purpose.ESCALATION not in purposes:
        errors["is_escalation_enabled"] = _(
            "Escalation is on but stage %(n)s has no escalation approver: add one with "
            "'as' set to Escalation approver, or turn escalation off."
        ) % {"n": stage.sequence}
    primaries = [a for a in approver_sets if a.purpose == Purpose.PRIMARY]
    if primaries and stage.quorum_mode == QuorumMode.ONE_FROM_EACH and len(primaries) < 2:
        errors["quorum_mode"] = _(
            "“One from each” needs at least two approvers listed in stage %(n)s; with one, "
            "any one of its people approves."
        ) % {"n": stage.sequence}
    if primaries and stage.quorum_mode == QuorumMode.SOME_OF and stage.quorum_count:
        most = _most_people(primaries)
        if most is not None and stage.quorum_count > most:
            errors["quorum_count"] = _(
                "Stage %(n)s needs %(k)s approvals, but its approvers name at most %(most)s people."
            ) % {"n": stage.sequence, "k": stage.quorum_count, "most": most}
    if errors:
        raise ValidationError(errors)


def _most_people(approver_sets):
    """How many different people these approver entries can name at most, today (None: no
    bound known, as sponsors can be many)."""
    users, groups = set(), set()
    for entry in approver_sets:
        if entry.subject_type == SubjectType.SINGLE_USER:
            users.add(entry.user_id)
        elif entry.subject_type == SubjectType.GROUP_MEMBERS:
            groups.add(entry.group_id)
        elif entry.subject_type in (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER):
            users.add(("manager", entry.manager_level or 1))
        else:
            return None
    members = GroupMembership.objects.filter(
        group_id__in=groups, role=GroupMembership.Role.MEMBER
    ).values_list("user_id", flat=True)
    return len(users | set(members)) if groups else len(users)


def approver_warnings(stage, approver_sets):
    """Managers and sponsors depend on the requestor: without a fallback nobody may decide."""
    warnings = []
    purposes = _purposes(approver_sets)
    pairs = [(Purpose.PRIMARY, Purpose.FALLBACK_PRIMARY)]
    if stage.is_escalation_enabled:
        pairs.append((Purpose.ESCALATION, Purpose.FALLBACK_ESCALATION))
    for purpose, fallback in pairs:
        relative = [
            a
            for a in approver_sets
            if a.purpose == purpose and a.subject_type in RELATIVE_SUBJECT_TYPES
        ]
        if relative and fallback not in purposes:
            warnings.append(
                _(
                    "Stage %(n)s: %(who)s may not exist for every requestor and there is no "
                    "%(fallback)s; such requests will wait until the deadline and be denied."
                )
                % {
                    "n": stage.sequence,
                    "who": ", ".join(str(a.get_subject_type_display()) for a in relative),
                    "fallback": Purpose(fallback).label.lower(),
                }
            )
    return warnings


def check_package_roles(catalog, roles):
    """A package grants only roles of resources in its own catalog."""
    if catalog is None:
        return
    foreign = [role for role in roles if role.resource.catalog_id != catalog.pk]
    if foreign:
        raise ValidationError(
            {
                "role": _(
                    "Role: %(roles)s belongs to a resource of another catalog; this package "
                    "can only grant roles of resources in its own catalog, %(catalog)s."
                )
                % {"roles": ", ".join(str(r) for r in foreign), "catalog": catalog}
            }
        )


def check_question_choices(question, choices):
    """A multiple-choice question needs choices to pick from."""
    if question.question_type == Question.QuestionType.MULTIPLE_CHOICE and not choices:
        raise ValidationError(
            {
                "question_type": _(
                    "Answer format: '%(text)s' is multiple choice but has no choices. "
                    "Add them on the question's own page, or make it a text question."
                )
                % {"text": question.text}
            }
        )


def check_policy_subjects(policy, subject_sets):
    """A policy for specific users or organizations must say which ones."""
    targets = [s for s in subject_sets if s.purpose == PolicySubjectSet.Purpose.ALLOWED_TARGET]
    specific = {
        AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        AllowedTargetScope.SPECIFIC_CONNECTED_ORGANIZATION_USERS,
    }
    if policy.allowed_target_scope in specific and not targets:
        raise ValidationError(
            {
                "allowed_target_scope": _(
                    "Who may request is '%(scope)s': add at least one subject with purpose "
                    "'May request'."
                )
                % {"scope": AllowedTargetScope(policy.allowed_target_scope).label}
            }
        )


def check_policy_reviewers(policy, subject_sets):
    """A policy with access reviews names who reviews, and who does when a manager is missing.

    ``subject_sets`` are the policy's PolicySubjectSet rows as they would be (saved or not).
    """
    if not policy.review_is_enabled or policy.review_is_self_review:
        return
    reviewers = [s for s in subject_sets if s.purpose == PolicySubjectSet.Purpose.PRIMARY_REVIEWER]
    fallbacks = [s for s in subject_sets if s.purpose == PolicySubjectSet.Purpose.FALLBACK_REVIEWER]
    if not reviewers:
        raise ValidationError(
            {
                "review_is_enabled": _(
                    "Access reviews are on but nobody reviews: add a subject with purpose "
                    "'Reviewer', let users review their own access, or turn reviews off."
                )
            }
        )
    relative = [s for s in reviewers if s.subject_type in RELATIVE_SUBJECT_TYPES]
    if relative and not fallbacks:
        raise ValidationError(
            {
                "review_is_enabled": _(
                    "Access reviews: %(who)s may not exist for every user, and there is no "
                    "fallback reviewer; add a subject with purpose 'Fallback reviewer'."
                )
                % {"who": ", ".join(str(s.get_subject_type_display()) for s in relative)}
            }
        )


REVIEW_START_MAX_YEARS = 5


def check_policy_dates(policy):
    """Access that ends on a date ends in the future; the first review is no more than a day
    in the past and at most five years ahead. A date kept unchanged on a saved policy (whose
    access ended, whose reviews started long ago) is not checked again."""
    errors = {}
    now = timezone.now()
    end = policy.expiration_end_datetime
    ends_on_date = policy.expiration_type == ExpirationType.AFTER_DATE_TIME
    if ends_on_date and end and end <= now and _changed(policy, "expiration_end_datetime"):
        errors["expiration_end_datetime"] = _(
            "Access would end in the past: give a date and time in the future."
        )
    start = policy.review_start_date
    if policy.review_is_enabled and start:
        today = timezone.localdate(now)
        latest = today + timedelta(days=366 * REVIEW_START_MAX_YEARS)
        if start < today - timedelta(days=1) and _changed(policy, "review_start_date"):
            errors["review_start_date"] = _(
                "The first review would be in the past: give today or a later date."
            )
        elif start > latest:
            errors["review_start_date"] = _(
                "The first review is at most %(years)d years ahead."
            ) % {"years": REVIEW_START_MAX_YEARS}
    if errors:
        raise ValidationError(errors)


def _changed(policy, name):
    """Whether the policy's ``name`` differs from its saved value (a new policy: always)."""
    if policy.pk is None or policy._state.adding:
        return True
    saved = AssignmentPolicy.objects.filter(pk=policy.pk).values_list(name, flat=True).first()
    return saved != getattr(policy, name)


def policy_warnings(policy, *, stage_count):
    if policy.is_approval_required_for_add and stage_count == 0:
        return [
            _(
                "%(policy)s requires approval but has no approval stage yet: add one before "
                "people request this package."
            )
            % {"policy": policy}
        ]
    return []
