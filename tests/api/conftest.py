"""Fixtures for API tests: registered applications, their tokens, personal tokens.

Names are stable; other API tests use them:

- ``api_app(permissions=[...], display_name=None, enabled=True)`` → ``(Application,
  client_id, secret)``: a registered application with one live client secret.
- ``app_token(permissions, catalog_roles=None)`` → token string: an application token
  (client credentials, issued by the real service) for a new application holding
  ``permissions``; ``catalog_roles`` is a list of ``(AdminRole, catalog)`` given to its
  service principal. ``app_token.last`` is the last Application made.
- ``user_token(user, permissions)`` → token string: a personal (delegated) token of ``user``.
- ``api_token(user_or_app, permissions)`` → token string: ``user_token`` for a user, an
  application token for an ``Application`` (its permissions are then the application's own).
- ``bearer(token)`` → ``{"HTTP_AUTHORIZATION": "Bearer <token>"}`` for Django's test client.
- ``api``: a test client that sends no session cookie; ``api.token = value`` (or
  ``api.as_token(value)``) makes every request send ``Authorization: Bearer value``; its
  ``get/post/patch/put/delete`` send JSON bodies by default.

Making credentials writes audit events (``application.created``, ``clientSecret.created``
for an application, ``accessToken.created`` for a personal token): count events after the
fixture has run, or filter them by action.
"""

import json

import pytest
from django.test import Client

from api.models import Application
from api.tokens import application_register, application_token_issue, secret_create
from entitlements.models import RoleAssignment


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture(name="bearer")
def bearer_fixture():
    return bearer


def make_app(permissions=(), *, display_name=None, enabled=True, actor=None):
    application = application_register(
        actor=actor,
        display_name=display_name or f"App {Application.objects.count() + 1}",
        permissions=list(permissions),
    )
    if not enabled:
        Application.objects.filter(pk=application.pk).update(enabled=False)
        application.enabled = False
    _, secret = secret_create(actor=actor, application=application, description="tests")
    return application, application.client_id, secret


def issue_app_token(application):
    secret = application.secrets.filter(revoked_at__isnull=True).first()
    if secret is None:
        secret, _ = secret_create(actor=None, application=application)
    _, value = application_token_issue(application=application, secret=secret)
    return value


def issue_user_token(user, permissions):
    from datetime import timedelta

    from django.utils import timezone

    from api.tokens import personal_token_create

    _, value = personal_token_create(
        actor=user,
        name="test token",
        permissions=list(permissions),
        expires=timezone.now() + timedelta(days=30),
    )
    return value


@pytest.fixture
def api_app(db):
    def factory(permissions=(), **kwargs):
        return make_app(permissions, **kwargs)

    return factory


@pytest.fixture
def app_token(db):
    def factory(permissions=(), catalog_roles=None):
        application, _, _ = make_app(permissions)
        for role, catalog in catalog_roles or ():
            RoleAssignment.objects.create(
                role=role, catalog=catalog, principal=application.service_principal
            )
        factory.last = application
        return issue_app_token(application)

    factory.last = None
    return factory


@pytest.fixture
def user_token(db):
    def factory(user, permissions):
        return issue_user_token(user, permissions)

    return factory


@pytest.fixture
def api_token(db):
    def factory(user_or_app, permissions=()):
        if isinstance(user_or_app, Application):
            return issue_app_token(user_or_app)
        return issue_user_token(user_or_app, permissions)

    return factory


class ApiClient(Client):
    """Django's test client, sending ``Authorization: Bearer`` when given a token and
    JSON bodies by default."""

    token = None

    def as_token(self, token):
        self.token = token
        return self

    def generic(self, method, path, data="", content_type="application/json", **extra):
        if self.token and "HTTP_AUTHORIZATION" not in extra:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        if content_type == "application/json" and isinstance(data, (dict, list)):
            data = json.dumps(data)
        return super().generic(method, path, data, content_type, **extra)

    def post(self, path, data=None, content_type="application/json", **extra):
        return super().post(path, data, content_type=content_type, **extra)

    def patch(self, path, data="", content_type="application/json", **extra):
        return super().patch(path, data, content_type=content_type, **extra)

    def put(self, path, data="", content_type="application/json", **extra):
        return super().put(path, data, content_type=content_type, **extra)


@pytest.fixture
def api(db):
    return ApiClient(enforce_csrf_checks=True)
