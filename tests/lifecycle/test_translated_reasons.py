"""The reasons services and selectors give reach people in their language (through gettext)."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import trans_real

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements import selectors
from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import Channel
from entitlements.services.requests import _raise_for_duplicate, request_submit
from tests.factories import AccessPackageFactory
from tests.lifecycle.requests_setup import approval_policy, give_assignment, open_policy

pytestmark = pytest.mark.django_db

ERRORS = {
    "DomainError",
    "InvalidRequest",
    "NotEligible",
    "StateConflict",
    "PermissionDenied",
    "ConnectorError",
}
MODULES = [
    "entitlements/selectors.py",
    "entitlements/errors.py",
    *sorted(
        str(p.relative_to(settings.BASE_DIR))
        for p in (Path(settings.BASE_DIR) / "entitlements/services").glob("*.py")
    ),
    "approvals/services.py",
]


@pytest.fixture
def german():
    """Put test translations into the German catalog for the duration of a test, and put back
    what the catalogue had."""
    with translation.override("de"):
        catalog = trans_real.translation("de")._catalog
        before = {}

        def add(msgid, msgstr):
            before.setdefault(msgid, catalog.get(msgid))
            catalog[msgid] = msgstr

        yield add
        # Put back the product's own German (the catalogue has these strings too).
        for msgid, msgstr in before.items():
            if msgstr is None:
                catalog._catalogs[0].pop(msgid, None)
            else:
                catalog[msgid] = msgstr


def test_a_separation_of_duties_reason_is_rendered_in_the_persons_language(german, requester):
    german(
        "This access package is incompatible with %(things)s, which you already have "
        "(separation of duties).",
        "Dieses Zugriffspaket verträgt sich nicht mit %(things)s, das Sie schon haben "
        "(Funktionstrennung).",
    )
    german("the access package %(name)s", "dem Zugriffspaket %(name)s")
    policy = open_policy()
    payments = AccessPackageFactory(display_name="Zahlungen")
    policy.access_package.incompatible_access_packages.add(payments)
    give_assignment(requester, payments)

    result = selectors.eligibility(user=requester, access_package=policy.access_package)

    assert result.reasons == [
        "Dieses Zugriffspaket verträgt sich nicht mit dem Zugriffspaket Zahlungen, das Sie "
        "schon haben (Funktionstrennung)."
    ]


def test_a_refusal_of_a_service_is_raised_in_the_persons_language(german, requester):
    german("Give a business justification.", "Geben Sie eine geschäftliche Begründung an.")
    policy = open_policy(is_requestor_justification_required=True)

    with pytest.raises(InvalidRequest) as refused:
        request_submit(actor=requester, target=requester, access_package=policy.access_package)

    assert refused.value.message == "Geben Sie eine geschäftliche Begründung an."


def test_a_message_kept_at_module_level_is_translated_when_raised(german):
    german(
        "There is already an open request for this package.",
        "Für dieses Paket gibt es schon eine offene Anfrage.",
    )

    with pytest.raises(StateConflict) as refused:
        _raise_for_duplicate(Exception("one_open_request_per_target_package"))

    assert str(refused.value) == "Für dieses Paket gibt es schon eine offene Anfrage."


def test_an_approval_refusal_is_rendered_in_the_persons_language(german, requester, approver):
    german("You cannot decide your own request.", "Sie können nicht selbst entscheiden.")
    request = request_submit(
        actor=requester,
        target=requester,
        access_package=approval_policy(approvers=[approver]).access_package,
    )

    with pytest.raises(PermissionDenied, match="^Sie können nicht selbst entscheiden.$"):
        stage_decide(
            actor=requester,
            stage=request.approval_stages.get(),
            decision=ReviewResult.APPROVED,
            channel=Channel.PORTAL,
        )


def _untranslated(path):
    """(line, text) of each literal message given to a domain error or as a ``reason``."""
    tree = ast.parse((Path(settings.BASE_DIR) / path).read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        values = [k.value for k in node.keywords if k.arg == "reason"]
        if name in ERRORS and node.args:
            values.append(node.args[0])
        for value in values:
            if isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value
            ):
                found.append((node.lineno, ast.unparse(value)))
    return found


@pytest.mark.parametrize("path", MODULES)
def test_every_reason_and_refusal_goes_through_gettext(path):
    assert _untranslated(path) == []
