"""Each app registers the emails it sends; the outbox renders them and builds their links."""

import ast
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from approvals.links import decision_url
from entitlements.models import Assignment, AssignmentState
from notifications import kinds
from notifications.models import Notification, NotificationKind
from notifications.services import notification_send, notify, render_notification
from tests.foundation.test_models import (
    test_every_index_has_a_name as check_index_names,
)
from tests.foundation.test_models import (
    test_every_model_has_a_uuid_id_times_a_docstring_and_a_readable_name as check_conventions,
)

SITE = "https://access.example.org"
APP = Path(__file__).resolve().parents[2] / "notifications"


def test_every_kind_of_email_is_registered_by_the_app_that_sends_it():
    assert kinds.registered() == set(NotificationKind.values)
    assert kinds.get(NotificationKind.APPROVAL_REQUIRED).context.__module__ == "approvals.emails"
    assert kinds.get(NotificationKind.REVIEW_STARTED).links.__module__ == "reviews.emails"
    assert kinds.get(NotificationKind.ACCESS_ENDED).to_requestor


def test_a_kind_registered_again_differently_is_refused():
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        kinds.register(NotificationKind.ACCESS_ENDED, template="emails/somethingElse")
    kinds.register(NotificationKind.ACCESS_ENDED, to_requestor=True)  # the same again is fine


def test_a_kind_outside_the_choices_is_refused():
    with pytest.raises(ImproperlyConfigured, match="not a NotificationKind"):
        kinds.register("holidayGreeting")


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(APP.rglob("*.py")), ids=lambda p: p.name)
def test_the_outbox_imports_nothing_from_the_apps_above_it(path):
    above = {"approvals", "reviews", "myaccess", "api", "scim", "extensions"}
    assert {m.split(".")[0] for m in imported_modules(path)}.isdisjoint(above)


@pytest.mark.parametrize("model", [Notification], ids=lambda m: m._meta.label)
def test_the_outbox_model_follows_the_conventions_of_every_model(model):
    check_conventions(model)
    check_index_names(model)


@pytest.mark.django_db
def test_links_in_emails_are_the_views_addresses_on_the_site_url(
    pending_stage, approver, requester, settings, time_machine
):
    # A signed link holds its signing time: the test's links and the email's are made in the
    # same (frozen) second, however slow the machine.
    time_machine.move_to(timezone.now(), tick=False)
    settings.SITE_URL = SITE
    request = pending_stage.request
    (to_approver,) = notify(
        kind=NotificationKind.APPROVAL_REQUIRED,
        recipients=[approver],
        key=f"{pending_stage.pk}",
        request=request,
        about=pending_stage,
    )
    (to_requestor,) = notify(
        kind=NotificationKind.REQUEST_DENIED,
        recipients=[requester],
        key=f"{request.pk}",
        request=request,
        about=pending_stage,
    )

    approve, deny = (
        decision_url(stage=pending_stage, approver=approver, decision=decision)
        for decision in ("approve", "deny")
    )
    assert approve.startswith(f"{SITE}/approvals/email/decide/")
    request_url = SITE + reverse("myaccess:request_detail", args=[request.pk])
    for notification, urls in ((to_approver, (approve, deny)), (to_requestor, (request_url,))):
        _subject, text, html = render_notification(notification)
        for url in urls:
            assert url in text
            assert url.replace("&", "&amp;") in html


@pytest.mark.django_db
def test_an_access_email_links_to_extending_that_assignment(approval_policy, requester, settings):
    settings.SITE_URL = SITE
    assignment = Assignment.objects.create(
        access_package=approval_policy.access_package,
        assignment_policy=approval_policy,
        target=requester,
        state=AssignmentState.DELIVERED,
    )
    (notification,) = notify(
        kind=NotificationKind.ACCESS_EXPIRING,
        recipients=[requester],
        key=f"{assignment.pk}",
        assignment=assignment,
        context={"days": 1},
    )

    _subject, text, _html = render_notification(notification)

    assert SITE + reverse("myaccess:assignment_extend", args=[assignment.pk]) in text


@pytest.mark.django_db
def test_sending_an_approval_email_takes_a_fixed_number_of_queries(
    pending_stage, approver, mailoutbox, django_assert_max_num_queries
):
    (notification,) = notify(
        kind=NotificationKind.APPROVAL_REQUIRED,
        recipients=[approver],
        key=f"{pending_stage.pk}",
        request=pending_stage.request,
        about=pending_stage,
    )
    # claim (3 with its savepoint), the row with its request and people, the answers,
    # the stage (approvals' context), record (3)
    with django_assert_max_num_queries(9):
        assert notification_send(notification_id=notification.pk) is True
    assert len(mailoutbox) == 1
