"""Provisioning clients' bearer tokens: made, shown once, revoked, looked up by SHA-256.

A token is 256 random bits behind the prefix ``ems_``, so a leaked one is recognisable
(secret scanners, logs) and never mistaken for an API token. Only its SHA-256 is stored.
"""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from entitlements.audit import audit_record
from entitlements.errors import InvalidRequest
from entitlements.models import Channel

from .models import ProvisioningClient

TOKEN_PREFIX = "ems_"
# last_used is written at most once a minute per client, not on every request.
LAST_USED_PRECISION_SECONDS = 60


def digest(value):
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(value.encode()).hexdigest()


def _new_token():
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return value, digest(value)


def client_create(*, name, actor, match_existing=False, channel=Channel.ADMIN, now=None):
    """A new provisioning client: (ProvisioningClient, its token, to show once)."""
    now = now or timezone.now()
    name = name.strip()
    if not name:
        raise InvalidRequest("A provisioning client needs a name.")
    if ProvisioningClient.objects.filter(name__iexact=name).exists():
        raise InvalidRequest(f"A provisioning client named {name} already exists.")
    value, hashed = _new_token()
    with transaction.atomic():
        client = ProvisioningClient.objects.create(
            name=name,
            match_existing=match_existing,
            token_hash=hashed,
            hint=value[:8],
            created_by=actor,
            created=now,
        )
        audit_record(
            action="provisioningClient.created",
            obj=client,
            actor=actor,
            channel=channel,
            data={"name": name, "hint": client.hint, "match_existing": match_existing},
            now=now,
        )
    return client, value


def client_match_existing_set(*, client, match_existing, actor, channel=Channel.ADMIN, now=None):
    """Let ``client`` take over people and groups the directory already has (or stop it).
    Setting the value it has changes nothing and writes no event."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ProvisioningClient.objects.select_for_update().get(pk=client.pk)
        if locked.match_existing != match_existing:
            before = locked.match_existing
            locked.match_existing = match_existing
            locked.modified = now
            locked.save(update_fields=["match_existing", "modified"])
            audit_record(
                action="provisioningClient.changed",
                obj=locked,
                actor=actor,
                channel=channel,
                before=str(before).lower(),
                after=str(match_existing).lower(),
                data={"name": locked.name, "match_existing": match_existing},
                now=now,
            )
    client.match_existing = locked.match_existing
    return client


def client_token_rotate(*, client, actor, channel=Channel.ADMIN, now=None):
    """A new token for ``client``; the old one stops working now. Returns the new value."""
    now = now or timezone.now()
    value, hashed = _new_token()
    with transaction.atomic():
        locked = ProvisioningClient.objects.select_for_update().get(pk=client.pk)
        if locked.revoked_at is not None:
            raise InvalidRequest("A revoked client gets no new token; create a new client.")
        locked.token_hash, locked.hint = hashed, value[:8]
        locked.save(update_fields=["token_hash", "hint", "modified"])
        audit_record(
            action="provisioningClient.tokenRotated",
            obj=locked,
            actor=actor,
            channel=channel,
            data={"name": locked.name, "hint": locked.hint},
            now=now,
        )
    client.token_hash, client.hint = locked.token_hash, locked.hint
    return value


def client_revoke(*, client, actor, channel=Channel.ADMIN, now=None):
    """Revoke a client: its token is refused from the next request on. Revoking twice
    changes nothing and writes no second event."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = ProvisioningClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(
            revoked_at=now, active=False, modified=now
        )
        if updated:
            client.revoked_at, client.active = now, False
            audit_record(
                action="provisioningClient.revoked",
                obj=client,
                actor=actor,
                channel=channel,
                data={"name": client.name, "hint": client.hint},
                now=now,
            )
    return client


def client_for_token(value, now=None):
    """The usable client a presented token names, else None."""
    if not value or len(value) > 200 or not value.startswith(TOKEN_PREFIX):
        return None
    # Looked up by the hash: equal hashes are the whole check, and no timing reveals a token.
    client = ProvisioningClient.objects.filter(token_hash=digest(value)).first()
    if client is None or not client.usable():
        return None
    now = now or timezone.now()
    if client.last_used is None or (now - client.last_used).total_seconds() > (
        LAST_USED_PRECISION_SECONDS
    ):
        ProvisioningClient.objects.filter(pk=client.pk).update(last_used=now)
    return client
