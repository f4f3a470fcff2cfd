"""Two answers to one callout arriving at the same moment, on the real PostgreSQL: the request
is resumed once."""

import pytest

from approvals.models import RequestApprovalStage
from entitlements.services.requests import request_submit
from extensions.models import Behavior, CalloutState, CustomExtensionCallout, Stage
from extensions.services import request_resume
from tests.extensions.helpers import attach_extension
from tests.lifecycle.requests_setup import approval_policy
from tests.lifecycle.test_races_requests import run_together
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def test_two_resumes_at_once_resume_the_request_once(requester, approver, settings):
    require_postgres()
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    policy = approval_policy(approvers=[approver])
    # Nothing listens there: the callout stays unsent, which a resume may still answer.
    attach_extension(
        policy, Stage.REQUEST_CREATED, url="http://127.0.0.1:9/", behavior=Behavior.LAUNCH_AND_WAIT
    )
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    callout = CustomExtensionCallout.objects.get(request=request)

    def resume():
        return request_resume(
            request_id=request.pk, callout_id=callout.pk, stage=Stage.REQUEST_CREATED
        )

    results, conflicts, errors = run_together([resume, resume])

    assert errors == []
    assert (len(results), len(conflicts)) == (1, 1)
    assert "already answered" in str(conflicts[0])
    callout.refresh_from_db()
    assert callout.state == CalloutState.CALLBACK_RECEIVED
    assert RequestApprovalStage.objects.filter(request=request).count() == 1
