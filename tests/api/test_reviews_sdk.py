"""The official msgraph-sdk against a live server: a reviewer lists the decisions waiting for
them and records one, as a Graph script would."""

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.identity_governance.access_reviews.definitions.item.instances.item.decisions.decisions_request_builder import (  # noqa: E501
    DecisionsRequestBuilder,
)
from msgraph.generated.models.access_review_instance_decision_item import (
    AccessReviewInstanceDecisionItem,
)

from api.permissions import REVIEW_READWRITE
from entitlements.models import PolicySubjectSet, SubjectType
from reviews.models import Decision
from reviews.services import review_instance_create
from tests.api.sdk import graph_as
from tests.factories import AccessPackageFactory, PolicyFactory, UserFactory, add_subject
from tests.reviews.conftest import open_assignments

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reviewer_decides_with_the_graph_sdk(live_server, user_token):
    reviewer = UserFactory()
    policy = PolicyFactory(
        access_package=AccessPackageFactory(display_name="Payroll"),
        review_is_enabled=True,
        review_start_date=timezone.localdate(),
        review_is_reviewer_justification_required=False,
    )
    add_subject(
        policy, PolicySubjectSet.Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=reviewer
    )
    open_assignments(policy, [UserFactory(display_name="Ann"), UserFactory(display_name="Ben")])
    now = timezone.now()
    instance = review_instance_create(
        policy=policy, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
    )
    graph = graph_as(live_server, user_token(reviewer, [REVIEW_READWRITE]))
    definitions = graph.identity_governance.access_reviews.definitions

    async def journey():
        mine = await definitions.filter_by_current_user_with_on("reviewer").get()
        definition = await definitions.by_access_review_schedule_definition_id(policy.pk).get()
        decisions = (
            definitions.by_access_review_schedule_definition_id(str(policy.pk))
            .instances.by_access_review_instance_id(str(instance.pk))
            .decisions
        )
        undecided = await decisions.get(
            RequestConfiguration(
                query_parameters=DecisionsRequestBuilder.DecisionsRequestBuilderGetQueryParameters(
                    filter="decision eq 'NotReviewed'"
                )
            )
        )
        first = undecided.value[0]
        await decisions.by_access_review_instance_decision_item_id(first.id).patch(
            AccessReviewInstanceDecisionItem(decision="Deny", justification="Left")
        )
        left = await decisions.get(
            RequestConfiguration(
                query_parameters=DecisionsRequestBuilder.DecisionsRequestBuilderGetQueryParameters(
                    filter="decision eq 'NotReviewed'"
                )
            )
        )
        return mine, definition, first, left

    mine, definition, first, left = asyncio.run(journey())

    assert [d.id for d in mine.value] == [str(policy.pk)]
    assert definition.settings.recurrence.pattern.interval == 3
    assert definition.scope.query.endswith(f"assignmentPolicyId eq '{policy.pk}')")
    assert first.principal.display_name == "Ann"
    assert first.resource.display_name == "Payroll"
    assert first.access_review_id == str(instance.pk)
    assert [d.principal.display_name for d in left.value] == ["Ben"]
    item = instance.items.get(target__display_name="Ann")
    assert (item.decision, item.decided_by, item.justification) == (Decision.DENY, reviewer, "Left")
