"""Creating and revoking API credentials: applications, client secrets, access tokens.

Every change is audited with ``entitlements.audit`` (the product's one writer); issuing a
token to an application is a sign-in, not a change, and is recorded as the secret's
``last_used`` instead. A secret or token value is returned once, to be shown once; only its
SHA-256 is kept.
"""

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from directory.models import User
from directory.rules import SERVICE_PRINCIPAL_DOMAIN
from entitlements.audit import audit_record
from entitlements.configuration import config_save
from entitlements.errors import InvalidRequest, PermissionDenied
from entitlements.models import Channel

from .models import AccessToken, Application, ClientSecret
from .permissions import APPLICATION_PERMISSIONS, DELEGATED_PERMISSIONS

# Entra's longest client secret lifetime is 2 years; the admin offers 6, 12 and 24 months.
SECRET_LIFETIME_DEFAULT = timedelta(days=180)
SECRET_LIFETIME_MAX = timedelta(days=730)
PERSONAL_TOKEN_MAX = timedelta(days=90)
# Prefixes make a leaked value recognisable (secret scanners, logs); the rest is random.
TOKEN_PREFIX = {AccessToken.Kind.APPLICATION: "ema_", AccessToken.Kind.DELEGATED: "emp_"}


def digest(value):
    """The SHA-256 (hex) a secret or token is stored and looked up by."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(value, stored):
    """Compares ``value``'s digest with a stored one in constant time."""
    return hmac.compare_digest(digest(value), stored)


def _permissions(values, allowed):
    values = sorted(set(values))
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidRequest(f"Unknown permission: {', '.join(unknown)}.")
    return values


def service_principal_email(client_id):
    return f"{client_id}@{SERVICE_PRINCIPAL_DOMAIN}"


def application_register(*, actor, display_name, permissions, channel=Channel.ADMIN, now=None):
    """Register an application with a new client id and its service principal: a directory
    user that cannot sign in (unusable password, an address nobody receives mail at)."""
    now = now or timezone.now()
    if not display_name.strip():
        raise InvalidRequest("An application needs a name.")
    permissions = _permissions(permissions, APPLICATION_PERMISSIONS)
    client_id = str(uuid.uuid4())
    with transaction.atomic():
        principal = User(
            email=service_principal_email(client_id),
            display_name=display_name,
            is_staff=False,
            is_superuser=False,
        )
        principal.set_unusable_password()
        principal.save()
        application = Application(
            display_name=display_name,
            client_id=client_id,
            permissions=permissions,
            service_principal=principal,
            created_by=actor,
        )
        config_save(actor=actor, obj=application, channel=channel, now=now)
    return application


def application_save(*, actor, application, channel=Channel.ADMIN, now=None):
    """Save a changed application (name, permissions, enabled), audited; the service
    principal follows its name and its enabled flag."""
    application.permissions = _permissions(application.permissions, APPLICATION_PERMISSIONS)
    with transaction.atomic():
        config_save(actor=actor, obj=application, channel=channel, now=now)
        User.objects.filter(pk=application.service_principal_id).update(
            display_name=application.display_name
        )
    return application


def secret_create(
    *, actor, application, description="", expires=None, channel=Channel.ADMIN, now=None
):
    """A new client secret for ``application``: (ClientSecret, the value to show once)."""
    now = now or timezone.now()
    expires = expires or now + SECRET_LIFETIME_DEFAULT
    if expires <= now or expires > now + SECRET_LIFETIME_MAX:
        raise InvalidRequest("A client secret expires within two years from now.")
    value = secrets.token_urlsafe(30)  # 240 random bits, 40 characters
    with transaction.atomic():
        secret = ClientSecret.objects.create(
            application=application,
            description=description[:256],
            secret_hash=digest(value),
            hint=value[:3],
            expires=expires,
            created_by=actor,
        )
        audit_record(
            action="clientSecret.created",
            obj=secret,
            actor=actor,
            channel=channel,
            data={
                "application": str(application.pk),
                "clientId": application.client_id,
                "hint": secret.hint,
                "expires": expires.isoformat(),
                "description": secret.description,
            },
            now=now,
        )
    return secret, value


def secret_revoke(*, actor, secret, channel=Channel.ADMIN, now=None):
    """Revoke a client secret: no token is issued for it any more (tokens already issued
    live until they expire or are revoked themselves)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = ClientSecret.objects.filter(pk=secret.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if updated:
            secret.revoked_at = now
            audit_record(
                action="clientSecret.revoked",
                obj=secret,
                actor=actor,
                channel=channel,
                data={"application": str(secret.application_id), "hint": secret.hint},
                now=now,
            )
    return secret


def _new_token(*, kind, user, permissions, expires, application=None, name=""):
    value = TOKEN_PREFIX[kind] + secrets.token_urlsafe(32)  # 256 random bits
    token = AccessToken.objects.create(
        kind=kind,
        token_hash=digest(value),
        user=user,
        application=application,
        name=name,
        permissions=permissions,
        expires=expires,
    )
    return token, value


def application_token_issue(*, application, secret, now=None):
    """A token for an application that proved a secret (client credentials grant): all the
    application's permissions, for settings.API_TOKEN_LIFETIME."""
    now = now or timezone.now()
    ClientSecret.objects.filter(pk=secret.pk).update(last_used=now)
    return _new_token(
        kind=AccessToken.Kind.APPLICATION,
        user=application.service_principal,
        application=application,
        permissions=sorted(application.permissions),
        expires=now + settings.API_TOKEN_LIFETIME,
    )


def personal_token_create(*, actor, name, permissions, expires, channel=Channel.PORTAL, now=None):
    """A personal token for ``actor``, acting as them within their own roles, with delegated
    ``permissions``, for at most 90 days: (AccessToken, the value to show once)."""
    now = now or timezone.now()
    name = name.strip()
    if not name:
        raise InvalidRequest("Give the token a name, to recognise it later.")
    if expires <= now or expires > now + PERSONAL_TOKEN_MAX:
        raise InvalidRequest("A personal token expires within 90 days from now.")
    permissions = _permissions(permissions, DELEGATED_PERMISSIONS)
    if not permissions:
        raise InvalidRequest("Choose at least one permission.")
    with transaction.atomic():
        token, value = _new_token(
            kind=AccessToken.Kind.DELEGATED,
            user=actor,
            permissions=permissions,
            expires=expires,
            name=name[:128],
        )
        audit_record(
            action="accessToken.created",
            obj=token,
            actor=actor,
            channel=channel,
            data={"name": token.name, "permissions": permissions, "expires": expires.isoformat()},
            now=now,
        )
    return token, value


def token_revoke(*, actor, token, channel=Channel.PORTAL, now=None):
    """Revoke a token; it stops working at the next request. A person revokes only their own
    personal tokens; a superuser any token."""
    now = now or timezone.now()
    if not (
        actor.is_superuser or (token.kind == token.Kind.DELEGATED and token.user_id == actor.pk)
    ):
        raise PermissionDenied("You may revoke only your own tokens.")
    with transaction.atomic():
        updated = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if updated:
            token.revoked_at = now
            audit_record(
                action="accessToken.revoked",
                obj=token,
                actor=actor,
                channel=channel,
                data={
                    "kind": token.kind,
                    "name": token.name,
                    "application": str(token.application_id or ""),
                },
                now=now,
            )
    return token


def token_lookup(value):
    """The token a presented value names, with its user and application, else None."""
    if not value or len(value) > 200:
        return None
    return (
        AccessToken.objects.select_related("user", "application")
        .filter(token_hash=digest(value))
        .first()
    )
