"""Packages, policies and requests the portal tests share."""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.models import Channel, Question, QuestionChoice, RequestType
from entitlements.services.requests import request_submit
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    add_approver,
    grant_role,
)


@pytest.fixture
def catalog(db):
    return CatalogFactory(display_name="Sales")


def make_package(catalog, name, *, approver=None, **policy_fields):
    """A package granting Member of a group, with one policy (approved by ``approver``)."""
    package = AccessPackageFactory(
        catalog=catalog, display_name=name, description=f"{name} for the sales team."
    )
    resource = GroupResourceFactory(catalog=catalog, group__display_name=f"{name} group")
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(
        access_package=package,
        is_approval_required_for_add=approver is not None,
        **policy_fields,
    )
    if approver is not None:
        stage = ApprovalStageFactory(policy=policy)
        add_approver(stage, user=approver)
    return package


@pytest.fixture
def open_package(catalog):
    """No approval: access is given at once."""
    return make_package(catalog, "Sales reports")


@pytest.fixture
def approved_package(catalog, approver):
    """Approved by Arno Approver; users may ask for a period, extend and remove."""
    return make_package(
        catalog,
        "CRM access",
        approver=approver,
        allow_custom_assignment_schedule=True,
        is_requestor_justification_required=True,
        enable_targets_to_self_update_access=True,
    )


@pytest.fixture
def ticket_question(approved_package):
    policy = approved_package.assignment_policies.get()
    return QuestionFactory(
        policy=policy, sequence=1, text="Ticket number?", regex_pattern=r"[A-Z]{3}-\d{4}"
    )


@pytest.fixture
def region_question(approved_package):
    policy = approved_package.assignment_policies.get()
    question = QuestionFactory(
        policy=policy,
        sequence=2,
        text="Region?",
        question_type=Question.QuestionType.MULTIPLE_CHOICE,
        is_required=False,
    )
    QuestionChoice.objects.create(question=question, sequence=1, actual_value="eu", text="Europe")
    QuestionChoice.objects.create(question=question, sequence=2, actual_value="us", text="America")
    return question


def submit(user, package, **kwargs):
    """A request through the service, as the portal would make it."""
    kwargs.setdefault("justification", "Quarterly planning")
    return request_submit(
        actor=kwargs.pop("actor", user),
        target=user,
        access_package=package,
        request_type=kwargs.pop("request_type", RequestType.USER_ADD),
        channel=Channel.PORTAL,
        **kwargs,
    )


def in_days(days):
    return timezone.localtime() + timedelta(days=days)


def local_input(moment):
    """How a datetime-local input sends a moment."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")
