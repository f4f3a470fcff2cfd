from datetime import timedelta

import pytest

from tests.factories import ApprovalStageFactory, PolicyFactory, add_approver


@pytest.fixture
def policy(db):
    return PolicyFactory(
        display_name="Contractors",
        is_approval_required_for_add=True,
        expiration_duration=timedelta(days=30),
    )


@pytest.fixture
def stage(policy, approver):
    stage = ApprovalStageFactory(policy=policy, duration_before_automatic_denial=timedelta(days=14))
    add_approver(stage, user=approver)
    return stage
