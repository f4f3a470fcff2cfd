"""Visibility is declared once per governed model and answered by ``restrict(user, action)``."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover
from entitlements import permissions
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AuditEvent,
    QuestionChoice,
    QuestionLocalization,
    RequestAnswer,
    RequestType,
    ResourceRole,
)
from entitlements.querysets import RestrictedQuerySet
from extensions.models import CustomExtension, CustomExtensionCallout, CustomExtensionStageSetting
from reviews.models import ReviewInstance, ReviewItem, ReviewItemReviewer
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
    add_subject,
    grant_role,
)
from tests.foundation.admin_support import give_role


def _governed_models():
    return [
        model
        for model in apps.get_models()
        if isinstance(model._default_manager.all(), RestrictedQuerySet)
    ]


def _one_of_everything(catalog, person):
    """A catalog with one row of every governed model in it; ``person`` holds and asks."""
    give_role(UserFactory(), AdminRole.CATALOG_OWNER, catalog)
    resource = GroupResourceFactory(catalog=catalog)
    package = AccessPackageFactory(catalog=catalog)
    grant_role(package, ResourceRole.objects.filter(resource=resource).first())
    policy = PolicyFactory(access_package=package)
    add_subject(policy, "allowedTarget", "singleUser", user=person)
    stage = ApprovalStageFactory(policy=policy)
    add_approver(stage, user=UserFactory())
    question = QuestionFactory(policy=policy)
    QuestionChoice.objects.create(question=question, actual_value="a", text="A")
    QuestionLocalization.objects.create(question=question, language_code="fr", text="Quoi ?")
    assignment = Assignment.objects.create(
        access_package=package, assignment_policy=policy, target=person
    )
    AssignmentResourceRole.objects.create(
        assignment=assignment,
        resource_role=ResourceRole.objects.filter(resource=resource).first(),
        target=person,
    )
    request = AssignmentRequest.objects.create(
        access_package=package,
        assignment_policy=policy,
        requestor=person,
        target=person,
        assignment=assignment,
        request_type=RequestType.USER_ADD,
    )
    RequestAnswer.objects.create(request=request, question=question, value="a")
    extension = CustomExtension.objects.create(
        catalog=catalog,
        display_name=f"Ticketing of {catalog.display_name}",
        endpoint_url="https://tickets.example.com/hook",
        secret_reference="env:TICKETS_SECRET",
    )
    CustomExtensionStageSetting.objects.create(
        policy=policy, stage="assignmentRequestCreated", custom_extension=extension
    )
    CustomExtensionCallout.objects.create(
        custom_extension=extension,
        stage="assignmentRequestCreated",
        request=request,
        dedupe_key=f"{extension.pk}:created:{request.pk}",
    )
    request_stage = RequestApprovalStage.objects.create(
        request=request, policy_stage=stage, sequence=1
    )
    StageApprover.objects.create(
        stage=request_stage, user=UserFactory(), kind=StageApprover.Kind.PRIMARY
    )
    AuditEvent.objects.create(
        action="request.submitted",
        object_type="entitlements.AssignmentRequest",
        object_id=str(request.pk),
        access_package=package,
    )
    start = timezone.now()
    instance = ReviewInstance.objects.create(
        policy=policy, access_package=package, start=start, end=start + timedelta(days=7)
    )
    item = ReviewItem.objects.create(instance=instance, assignment=assignment, target=person)
    ReviewItemReviewer.objects.create(
        instance=instance, item=item, user=UserFactory(), kind=ReviewItemReviewer.Kind.PRIMARY
    )


@pytest.fixture
def two_catalogs(db, requester):
    mine, theirs = CatalogFactory(display_name="Mine"), CatalogFactory(display_name="Theirs")
    _one_of_everything(mine, requester)
    _one_of_everything(theirs, requester)
    return mine, theirs


def _in_catalog(model, catalog):
    path = permissions.scope_of(model).path
    return model.objects.filter(**{path or "pk": catalog.pk})


def test_every_governed_model_declares_its_scope():
    governed = _governed_models()

    assert {m._meta.label for m in governed if permissions.scope_of(m) is None} == set()
    assert {
        "entitlements.Catalog",
        "entitlements.AssignmentRequest",
        "entitlements.AuditEvent",
        "approvals.RequestApprovalStage",
        "reviews.ReviewItem",
    } <= {m._meta.label for m in governed}


@pytest.mark.parametrize("model", _governed_models(), ids=lambda m: m._meta.label)
def test_an_outsider_sees_nothing_and_a_reader_only_their_catalogs_rows(
    model, two_catalogs, outsider
):
    mine, theirs = two_catalogs
    reader = UserFactory()
    give_role(reader, AdminRole.CATALOG_READER, mine)
    expected = set(_in_catalog(model, mine))

    assert expected and _in_catalog(model, theirs).exists()
    assert not model.objects.restrict(outsider).exists()
    assert set(model.objects.restrict(reader)) == expected
    assert not model.objects.restrict(reader, "change").exists()


@pytest.mark.parametrize("model", _governed_models(), ids=lambda m: m._meta.label)
def test_a_superuser_sees_every_row(model, two_catalogs, admin_user):
    assert model.objects.restrict(admin_user).count() == model.objects.count()


def test_people_see_their_own_requests_and_assignments_whatever_their_roles(
    two_catalogs, requester, outsider
):
    assert AssignmentRequest.objects.restrict(requester, "own").count() == 2
    assert Assignment.objects.restrict(requester, "own").count() == 2
    assert not AssignmentRequest.objects.restrict(outsider, "own").exists()
    assert not Assignment.objects.restrict(outsider, "own").exists()


def test_an_approver_sees_the_stages_they_approve_and_a_reviewer_the_items_they_review(
    two_catalogs, outsider
):
    approver = StageApprover.objects.first().user
    reviewer = ReviewItemReviewer.objects.first().user

    assert list(RequestApprovalStage.objects.restrict(approver, "approve")) == [
        StageApprover.objects.first().stage
    ]
    assert list(ReviewItem.objects.restrict(reviewer, "review")) == [
        ReviewItemReviewer.objects.first().item
    ]
    assert not RequestApprovalStage.objects.restrict(outsider, "approve").exists()
    assert not ReviewItem.objects.restrict(outsider, "review").exists()


def test_an_action_a_model_does_not_declare_is_refused(db, requester):
    with pytest.raises(ValueError, match="no action 'review'"):
        AssignmentRequest.objects.restrict(requester, "review")
