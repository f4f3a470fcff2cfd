"""Input nobody should send never gets a server error: every URL pattern, three personas.

The fuzz walks every pattern of the URL conf (the portal, the decision links, the reviews,
allauth and the whole admin site), fills its parameters with real objects, and sends it, as
an anonymous visitor, an ordinary user and an administrator, the inputs an attacker tried:
forms in UTF-16, NUL bytes (PostgreSQL refuses them in text), query strings that are huge,
not UTF-8 or have too many fields, and URL parameters that are not ids. The CSRF check is
on, as in production: Django's default 400 page used to read the body again behind it.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpResponseServerError
from django.test import Client, TestCase
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from fido2.cose import ES256
from fido2.utils import websafe_encode
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

from api.models import AccessToken
from api.permissions import EM_READ
from api.tokens import application_register, personal_token_create, secret_create
from approvals.links import decision_token
from approvals.models import ApprovalDelegation, RequestApprovalStage
from directory.models import Application, EntitlementManagementSettings, Site, User
from entitlements.models import (
    AccessPackage,
    AdminRole,
    Assignment,
    AssignmentRequest,
    BulkJob,
    ConnectedSystem,
    DriftItem,
    DriftReport,
    RequestState,
    RoleAssignment,
    SubjectType,
)
from entitlements.services.requests import request_submit
from extensions.models import CustomExtension, CustomExtensionCallout
from identity.models import DirectoryImport, GuestLifecycle
from reviews.models import ReviewInstance
from reviews.services import review_instance_create
from scim.tokens import client_create
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    ConnectedOrganizationFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
    add_subject,
    grant_role,
)

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32  # sent unmasked in the form, which Django accepts
PERSONAS = ["anonymous", "user", "admin"]
BAD_PARAMETERS = ["not-a-uuid", str(uuid.UUID(int=0)), "9" * 25, "\u00e9\u2713" + "x" * 300, "\x00"]


# --- Every URL pattern ----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # the joined route, e.g. "admin/entitlements/assignment/<path:object_id>/change/"
    name: str
    pattern: URLPattern

    @property
    def parameters(self):
        return set(re.findall(r"\(\?P<(\w+)>|<(?:\w+:)?(\w+)>", self.route))

    def url(self, values):
        """The route with ``values`` in place of its parameters."""
        path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", lambda m: values[m[1]], self.route)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m[1]], path)
        return "/" + path.replace("^", "").replace("$", "")


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(n for n in (namespace, entry.namespace) if n)
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            name = ":".join(n for n in (namespace, entry.name or "") if n)
            yield Route(prefix + str(entry.pattern), name, entry)


# The Graph API's routes (/v1.0/...) are fuzzed from their OpenAPI by schemathesis
# (tests/api/test_fuzz_schema.py) and tried by every persona in tests/api/test_access_matrix.py;
# an unreadable request there is a Graph JSON 400 (tests/api, config.middleware).
ROUTES = [r for r in _walk(get_resolver().url_patterns) if not r.route.lstrip("^").startswith("v1")]


# --- A small world of real objects ----------------------------------------------------------


@dataclass
class World:
    anonymous: None
    user: object
    admin: object
    approver: object
    package: object
    request: object
    stage: object
    assignment: object
    review: object
    webauthn: object

    def values(self, route):
        """Real objects for ``route``'s parameters: the user's own where the page is theirs."""
        name = route.name
        admin_model = re.match(r"admin/(\w+)/(\w+)/", route.route)
        model = admin_model and admin_model_of(*admin_model.groups())
        by_name = {
            "myaccess:package": self.package.pk,
            "myaccess:request_create": self.package.pk,
            "myaccess:assignment_extend": self.assignment.pk,
            "myaccess:assignment_remove": self.assignment.pk,
            "myaccess:request_detail": self.request.pk,
            "myaccess:request_submitted": self.request.pk,
            "myaccess:request_cancel": self.request.pk,
            "myaccess:approval_detail": self.stage.pk,
            "myaccess:approval_revoke": self.stage.approvers.get(user=self.approver).pk,
            "myaccess:approval_delegation_end": ApprovalDelegation.objects.get().pk,
            "reviews:accept": self.review.pk,
            "mfa_remove_webauthn": self.webauthn.pk,
            "mfa_edit_webauthn": self.webauthn.pk,
            "api-token-revoke": AccessToken.objects.filter(name="Fuzz token").get().pk,
        }
        values = {
            "pk": by_name.get(name, ""),
            "token": decision_token(stage=self.stage, approver=self.approver),
            "id": self.user.pk,
            "content_type_id": ContentType.objects.get_for_model(AccessPackage).pk,
            "app_label": "entitlements",
            "provider_id": "sso",
            "key": "a-key",
            "uidb36": "1",
            "url": "no-such-page/",
            "tenant": "common",
            "item": DriftItem.objects.order_by("pk").first().pk,
            "job_id": BulkJob.objects.order_by("pk").first().pk,
            "path": "Users",  # the SCIM service provider's one route (/scim/v2/<path>)
        }
        target = model if model and name != "admin:view_on_site" else AccessPackage
        values["object_id"] = target._default_manager.order_by("pk").first().pk
        if model and not values["pk"]:  # an admin page of its own about one row
            values["pk"] = values["object_id"]
        return {key: str(value) for key, value in values.items()}


def admin_model_of(app_label, model_name):
    """The model an admin route such as ``admin/<app_label>/<model_name>/...`` is about."""
    models = {(m._meta.app_label, m._meta.model_name): m for m in admin.site._registry}
    return models.get((app_label, model_name))


def _webauthn_key(user):
    """A security key as allauth stores it after registration (attestation "none")."""
    public_key = ES256.from_cryptography_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    credential_id = b"fuzz-credential"
    auth_data = AuthenticatorData.create(
        hashlib.sha256(b"localhost").digest(),
        AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.AT,
        0,
        AttestedCredentialData.create(b"\0" * 16, credential_id, public_key),
    )
    client_data = CollectedClientData.create("webauthn.create", b"challenge", "http://localhost")
    credential = {
        "id": websafe_encode(credential_id),
        "rawId": websafe_encode(credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": websafe_encode(client_data),
            "attestationObject": websafe_encode(AttestationObject.create("none", auth_data, {})),
        },
        "clientExtensionResults": {},
    }
    return Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.WEBAUTHN,
        data={"name": "Office key", "credential": credential},
    )


def _third_party_rows(user):
    """One row of each model the admin shows that the product itself does not create."""
    AuthGroup.objects.create(name="Helpdesk")
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="fuzz", task="fuzz.task", interval=every_minute)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    app = SocialApp.objects.create(provider="openid_connect", provider_id="sso", name="SSO")
    account = SocialAccount.objects.create(user=user, provider="sso", uid="user-1")
    SocialToken.objects.create(app=app, account=account, token="t")


def _build_world():
    now = timezone.now()
    user = UserFactory(email="fuzz.user@example.com", display_name="Fuzz User")
    approver = UserFactory(email="fuzz.approver@example.com", display_name="Fuzz Approver")
    admin_user = UserFactory(
        email="fuzz.admin@example.com", display_name="Fuzz Admin", is_staff=True
    )
    admin_user.is_superuser = True
    admin_user.save(update_fields=["is_superuser"])

    resource = GroupResourceFactory(group__display_name="Fuzz group")
    catalog = resource.catalog
    RoleAssignment.objects.create(role=AdminRole.CATALOG_OWNER, principal=approver, catalog=catalog)
    ConnectedOrganizationFactory()
    EntitlementManagementSettings.objects.create()
    Application.objects.create(display_name="Fuzz application")
    Site.objects.create(display_name="Fuzz site", url="https://sites.example.com/fuzz")
    member = resource.roles.get(origin_id="Member")
    approved = AccessPackageFactory(catalog=catalog, display_name="Fuzz approved")
    grant_role(approved, member)
    stage = ApprovalStageFactory(policy__access_package=approved)
    add_approver(stage, user=approver)
    QuestionFactory(policy=stage.policy, is_required=False)
    reviewed = AccessPackageFactory(catalog=catalog, display_name="Fuzz reviewed")
    grant_role(reviewed, member)
    policy = PolicyFactory(access_package=reviewed, review_is_enabled=True)
    add_subject(policy, "primaryReviewer", SubjectType.SINGLE_USER, user=approver)

    with TestCase.captureOnCommitCallbacks(execute=True):
        request = request_submit(actor=user, target=user, access_package=approved, now=now)
        request_submit(actor=user, target=user, access_package=reviewed, now=now)
        review = review_instance_create(
            policy=policy, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
        )
    _third_party_rows(user)
    application = application_register(
        actor=admin_user, display_name="Fuzz API client", permissions=[EM_READ]
    )
    secret_create(actor=admin_user, application=application)
    ldap = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP, name="Fuzz LDAP", settings={"url": "ldap://127.0.0.1:9"}
    )
    DirectoryImport.objects.create(name="Fuzz import", system=ldap)
    guest = UserFactory(email="fuzz.guest@partner.example", user_type=User.UserType.GUEST)
    GuestLifecycle.objects.create(user=guest, last_assignment_ended=now, blocked_at=now)
    client_create(name="Fuzz SCIM client", actor=admin_user)
    personal_token_create(
        actor=user, name="Fuzz token", permissions=[EM_READ], expires=now + timedelta(days=7)
    )
    BulkJob.objects.create(  # a bulk assignment's preview, for the package's job routes
        kind=BulkJob.Kind.ADD,
        access_package=AccessPackage.objects.order_by("pk").first(),
        actor=approver,
        user_ids=[[str(user.pk), 1]],
        total=1,
    )
    ApprovalDelegation.objects.create(  # the approver's delegate, for the delegation routes
        delegator=approver, delegate=admin_user, start=now, end=now + timedelta(days=7)
    )
    extension = CustomExtension.objects.create(
        catalog=catalog,
        display_name="Fuzz ticketing",
        endpoint_url="https://tickets.example.com/hook",
        secret_reference="CUSTOM_EXTENSION_FUZZ",
    )
    CustomExtensionCallout.objects.create(
        custom_extension=extension,
        stage="assignmentRequestCreated",
        request=request,
        dedupe_key=f"fuzz:{request.pk}",
    )
    report = DriftReport.objects.create(system=resource.connected_system, started=now, finished=now)
    DriftItem.objects.create(
        report=report, resource_role=member, key="someone@example.com", kind="extra", detected=now
    )
    return World(
        anonymous=None,
        user=user,
        admin=admin_user,
        approver=approver,
        package=approved,
        request=request,
        stage=RequestApprovalStage.objects.get(request=request),
        assignment=Assignment.objects.get(target=user, access_package=reviewed),
        review=ReviewInstance.objects.get(pk=review.pk),
        webauthn=_webauthn_key(user),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module and rolled back after it; each test runs in a savepoint."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


# --- Sending ----------------------------------------------------------------------------------


class Visitor:
    """A test client as one persona, with the CSRF check on and a CSRF cookie it knows."""

    def __init__(self, person):
        self.person = person
        self.client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        self.failures = []
        self._sign_in()

    def _sign_in(self):
        if self.person is not None:
            self.client.force_login(self.person)
        self.client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET

    def send(self, method, url, what, *, body=b"", content_type=None, **extra):
        # Each request is undone, so a form the admin accepts (a deletion) leaves the world as
        # it was for the next one.
        kind = content_type or "application/x-www-form-urlencoded"
        data = {"data": body, "content_type": kind} if method == "POST" else {}
        with transaction.atomic():
            try:
                response = self.client.generic(method, url, **data, **extra)
            except Exception as exc:  # the error page itself failed: no page at all
                response = HttpResponseServerError(repr(exc))
            transaction.set_rollback(True)
        if response.status_code >= 500:
            self.failures.append(f"{method} {url[:120]!r} ({what}): {response.status_code}")
        # A sign-out, sign-in or password page may end the session or rotate the CSRF cookie.
        session = self.client.cookies.get(settings.SESSION_COOKIE_NAME)
        if self.person is not None and not (session and session.value):
            self._sign_in()
        self.client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
        return response


def form(**fields):
    from urllib.parse import urlencode

    return urlencode({"csrfmiddlewaretoken": CSRF_SECRET, **fields})


def visitor(world, persona):
    return Visitor(getattr(world, persona))


MANY_FIELDS = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 10))
QUERY_STRINGS = {
    # One at a time: the admin drops a whole query it does not understand before the database.
    "NUL byte in a choice filter": "state__exact=%00",
    "NUL byte in a foreign key filter": "user=%00",
    "NUL byte in a search": "q=%00",
    "too many fields": MANY_FIELDS,
    # Percent escapes and raw bytes (a WSGI server passes them on as Latin-1) that are not
    # UTF-8, a huge value, and admin list parameters out of range.
    "not UTF-8 and huge": "q=%ff%fe%fd&o=%c3%28&page=%e2%82&_changelist_filters=%ff"
    "&r=\xff\xfe\x80&p=-1&o=999&e=1&all=&big=" + "x" * 60_000,
}
FORM_BODIES = {
    "UTF-16 form": (
        form(login="a@example.com", password="x").encode("utf-16"),
        "application/x-www-form-urlencoded; charset=utf-16",
    ),
    "NUL bytes in fields": (
        (form() + "&q=%00&action=%00&_selected_action=%00&login=%00").encode(),
        "application/x-www-form-urlencoded",
    ),
    "undecodable fields": (
        (
            form(action="delete_selected", _selected_action="not-a-uuid")
            + "&_selected_action="
            + "9" * 25
            + "&q=%ff%fe"
        ).encode(),
        "application/x-www-form-urlencoded",
    ),
    "UTF-16 multipart": (
        '--b\r\nContent-Disposition: form-data; name="q"\r\n\r\n\x00\r\n--b--\r\n'.encode("utf-16"),
        "multipart/form-data; boundary=b",
    ),
}


# --- The fuzz ---------------------------------------------------------------------------------


def test_the_fuzz_reaches_every_url_pattern_with_real_objects(world):
    assert len(ROUTES) > 200
    empty = [m._meta.label for m in admin.site._registry if not m._default_manager.exists()]
    assert empty == [], "no row to fuzz with"
    for route in ROUTES:
        match = resolve(route.url(world.values(route)))
        assert match.func == route.pattern.callback, route.route


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_page_answers_a_server_error_to_a_malformed_query_string(world, persona):
    person = visitor(world, persona)
    for route in ROUTES:
        url = route.url(world.values(route))
        for what, query in QUERY_STRINGS.items():
            person.send("GET", url, what, QUERY_STRING=query)
    assert not person.failures, "\n".join(person.failures)


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_page_answers_a_server_error_to_a_malformed_form(world, persona):
    person = visitor(world, persona)
    for route in ROUTES:
        url = route.url(world.values(route))
        for what, (body, content_type) in FORM_BODIES.items():
            person.send("POST", url, what, body=body, content_type=content_type)
    assert not person.failures, "\n".join(person.failures)


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_page_answers_a_server_error_to_a_parameter_that_is_not_an_id(world, persona):
    person = visitor(world, persona)
    for route in (r for r in ROUTES if r.parameters):
        good = world.values(route)
        for name in {a or b for a, b in route.parameters}:
            for bad in BAD_PARAMETERS:
                url = route.url({**good, name: bad})
                person.send("GET", url, f"{name}={bad[:20]!r}")
                # A form takes the same lookup: one id that is not one, one that is missing.
                if bad in BAD_PARAMETERS[:2]:
                    person.send("POST", url, f"{name}={bad[:20]!r}", body=form().encode())
    assert not person.failures, "\n".join(person.failures)


def test_a_nul_byte_in_a_cookie_answers_400(world):
    person = visitor(world, "admin")
    person.client.cookies[settings.SESSION_COOKIE_NAME] = "abcdefgh\x00"
    response = person.send("GET", "/admin/entitlements/assignment/", "NUL in the session")
    assert response.status_code == 400


# --- The defects as they were found -------------------------------------------------------------


def test_a_utf16_form_on_the_sign_in_page_answers_400_with_a_page(world):
    anonymous = visitor(world, "anonymous")
    body, content_type = FORM_BODIES["UTF-16 form"]
    response = anonymous.send(
        "POST", "/accounts/login/", "sign in", body=body, content_type=content_type
    )
    assert response.status_code == 400
    assert "The request could not be read" in response.content.decode()


def test_a_utf16_form_from_a_signed_in_person_answers_400_and_changes_nothing(world):
    person = visitor(world, "user")
    body = form(justification="please").encode("utf-16")
    before = AssignmentRequest.objects.count()
    response = person.send(
        "POST",
        f"/requests/{world.request.pk}/cancel/",
        "cancel",
        body=body,
        content_type="application/x-www-form-urlencoded; charset=utf-16",
    )
    assert response.status_code == 400
    assert "The request could not be read" in response.content.decode()
    world.request.refresh_from_db()
    assert world.request.state == RequestState.PENDING_APPROVAL
    assert AssignmentRequest.objects.count() == before


@pytest.mark.parametrize("query", ["state__exact=%00", "user=%00", "q=%00"])
def test_a_nul_byte_in_an_admin_changelist_filter_answers_400_with_a_page(world, query):
    person = visitor(world, "admin")
    for changelist in ("assignment", "assignmentrequest"):
        url = f"/admin/entitlements/{changelist}/"
        response = person.send("GET", url, query, QUERY_STRING=query)
        assert response.status_code == 400, url
        assert "The request could not be read" in response.content.decode()
