"""The append-only, hash-chained audit trail.

Each event stores ``digest``, the SHA-256 of its canonical content (``canonical_content``),
computed in Python when it is written. The chain (``sequence``, ``prev_hash``, ``hash`` =
SHA-256 of ``prev_hash + digest``) is assigned inside the writing transaction: on PostgreSQL
by a deferred trigger at COMMIT, after every other lock the transaction takes, so audit
writers never wait for each other while holding a business row (docs/audit.md explains why
that cannot deadlock); on SQLite, a single-writer database, in Python before the insert.
On PostgreSQL a trigger also refuses every UPDATE and DELETE except the one that fills the
chain columns while they are still empty.
"""

import datetime
import decimal
import hashlib
import json
import uuid

import pgtrigger
from django.db import connections, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel, User

from ..querysets import RestrictedQuerySet
from .catalogs import AccessPackage
from .lifecycle import AssignmentRequest

# --------------------------------------------------------------------------------------
# Audit trail
# --------------------------------------------------------------------------------------


class Channel(models.TextChoices):
    """Through which door an action came."""

    PORTAL = "portal", _("My Access")
    EMAIL = "email", _("Email link")
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    SYSTEM = "system", _("System")


# --------------------------------------------------------------------------------------
# Canonical content and the chain's hashes (shared by the writer, the migration that
# chained the existing rows, audit_verify and audit_export; docs/audit.md states them)
# --------------------------------------------------------------------------------------

GENESIS_HASH = "0" * 64
CONTENT_FIELDS = (
    "id",
    "created",
    "actor_id",
    "actor_display",
    "channel",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "target_id",
    "access_package_id",
    "request_id",
    "data",
)


def _json_value(value):
    # An integral float and an int are one JSON number: PostgreSQL's jsonb returns 1e23 as
    # the int 10**23, so both sides write the number the float's text means, exactly (not
    # int(1e23), the binary float's 99999999999999991611392).
    if isinstance(value, float) and value.is_integer():
        return int(decimal.Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _uuid_text(value):
    return (
        None if value is None else str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
    )


def _utc_text(value):
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value.utcoffset():
        value = value.astimezone(datetime.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}Z"


def canonical_content(values, *, stored=False):
    """The event's content as a dict of JSON values (``values`` maps CONTENT_FIELDS).
    ``stored``: read back from the database, so ``data`` is already plain JSON."""
    data = values["data"]
    if not stored:
        # Through JSON first: tuples become lists and keys strings, as the database stores them.
        data = json.loads(json.dumps(data))
    return {
        "id": _uuid_text(values["id"]),
        "created": _utc_text(values["created"]),
        "actor_id": _uuid_text(values["actor_id"]),
        "actor_display": str(values["actor_display"]),
        "channel": str(values["channel"]),
        "action": str(values["action"]),
        "object_type": str(values["object_type"]),
        "object_id": str(values["object_id"]),
        "before": str(values["before"]),
        "after": str(values["after"]),
        "reason": str(values["reason"]),
        "target_id": _uuid_text(values["target_id"]),
        "access_package_id": _uuid_text(values["access_package_id"]),
        "request_id": _uuid_text(values["request_id"]),
        "data": _json_value(data),
    }


def canonical_json(content):
    """The one byte string a digest is taken of: sorted keys, no spaces, ASCII only."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def content_digest(values, *, stored=False):
    return hashlib.sha256(canonical_json(canonical_content(values, stored=stored))).hexdigest()


def link_hash(prev_hash, digest):
    return hashlib.sha256((prev_hash + digest).encode()).hexdigest()


def _chain_in_python(events, using):
    """SQLite: number and link ``events`` after the last chained event, inside the caller's
    transaction (SQLite's IMMEDIATE transactions make this connection the only writer). One
    query; on SQLite the head is the last event (AuditChainHead is PostgreSQL's)."""
    last = (
        AuditEvent.objects.using(using)
        .filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    sequence, head_hash = last or (0, GENESIS_HASH)
    for event in events:
        sequence += 1
        event.sequence, event.prev_hash = sequence, head_hash
        event.hash = head_hash = link_hash(head_hash, event.digest)


def chain_head(using="default"):
    """(sequence, hash) of the chain's head: PostgreSQL's head row, or the last event."""
    if connections[using].vendor == "postgresql":
        head = AuditChainHead.objects.using(using).filter(pk=AuditChainHead.SINGLETON).first()
        return (head.sequence, head.hash) if head else (0, GENESIS_HASH)
    chained = AuditEvent.objects.using(using).filter(sequence__isnull=False)
    last = chained.order_by("-sequence").values_list("sequence", "hash").first()
    return last or (0, GENESIS_HASH)


def _seal(events, using):
    """Give each new event its digest; on databases without the chain trigger, its link."""
    for event in events:
        if not event.created:
            event.created = timezone.now()
        event.digest = content_digest({name: getattr(event, name) for name in CONTENT_FIELDS})
    if connections[using].vendor != "postgresql":
        _chain_in_python(events, using)


class AuditEventQuerySet(RestrictedQuerySet):
    """Append-only: rows are added (``save`` or ``bulk_create``) and never changed or removed."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            _seal(objs, self.db)
            return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs):
        raise TypeError("Audit events are append-only.")

    def delete(self):
        raise TypeError("Audit events are append-only.")


# PostgreSQL: refuse UPDATE and DELETE, except the commit trigger's one UPDATE that fills
# the chain columns of a row that has none, changing nothing else.
# The fill must come from the link trigger (pg_trigger_depth() > 1: a statement a trigger
# ran, not a client's) and its hash must be sha256(prev_hash || digest).
_APPEND_ONLY_SQL = """
    IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND NEW.sequence IS NOT NULL
            AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
            AND pg_trigger_depth() > 1
            AND NEW.hash = encode(sha256(convert_to(NEW.prev_hash || OLD.digest, 'UTF8')), 'hex')
            THEN
        unchained := NEW;
        unchained.sequence := NULL;
        unchained.prev_hash := NULL;
        unchained.hash := NULL;
        IF unchained IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'Audit events are append-only: % of an audit event refused.', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
"""

# PostgreSQL: a new event arrives without its link; only the commit trigger gives it one
# (an INSERT with a sequence of its own would take the next writer's and block the chain).
_INSERT_UNCHAINED_SQL = """
    IF NEW.sequence IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL THEN
        RAISE EXCEPTION 'Audit events are inserted without their link: the chain gives it.'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
"""

# PostgreSQL: the chain's head only moves forward (or stays, a transaction that chained
# nothing) and is never removed.
_HEAD_FORWARD_SQL = """
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND (NEW.sequence > OLD.sequence
            OR (NEW.sequence = OLD.sequence AND NEW.hash = OLD.hash)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'The audit chain head only moves forward: % refused.', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
"""

# PostgreSQL, after each INSERT statement, once per transaction: queue an AuditChainQueue
# row. Its deferred trigger runs at COMMIT and queues a second ("final") row, whose trigger
# therefore runs after every deferred check pending at COMMIT (foreign keys' FOR KEY SHARE
# locks included): the chain's lock is the last lock the transaction takes.
_QUEUE_CHAIN_SQL = """
    IF current_setting('entitlements.audit_chain_queued', true) IS DISTINCT FROM 'on' THEN
        PERFORM set_config('entitlements.audit_chain_queued', 'on', true);
        INSERT INTO entitlements_auditchainqueue (final) VALUES (false);
    END IF;
    RETURN NULL;
"""

# PostgreSQL, last at COMMIT: lock the head, number and link this transaction's events in
# (created, id) order, move the head. Other writers' uncommitted events are invisible here.
_CHAIN_SQL = """
    DELETE FROM entitlements_auditchainqueue WHERE id = NEW.id;
    IF NOT NEW.final THEN
        INSERT INTO entitlements_auditchainqueue (final) VALUES (true);
        RETURN NULL;
    END IF;
    PERFORM set_config('entitlements.audit_chain_queued', '', true);
    SELECT sequence, hash INTO head_sequence, head_hash
        FROM entitlements_auditchainhead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO entitlements_auditchainhead (id, sequence, hash)
            VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
        SELECT sequence, hash INTO head_sequence, head_hash
            FROM entitlements_auditchainhead WHERE id = 1 FOR UPDATE;
    END IF;
    FOR pending IN
        SELECT id, digest FROM entitlements_auditevent
        WHERE sequence IS NULL ORDER BY created, id
    LOOP
        head_sequence := head_sequence + 1;
        UPDATE entitlements_auditevent
            SET sequence = head_sequence,
                prev_hash = head_hash,
                hash = encode(sha256(convert_to(head_hash || pending.digest, 'UTF8')), 'hex')
            WHERE id = pending.id
            RETURNING hash INTO head_hash;
    END LOOP;
    UPDATE entitlements_auditchainhead
        SET sequence = head_sequence, hash = head_hash WHERE id = 1;
    RETURN NULL;
"""


class AuditEvent(BaseModel):
    """One recorded transition: who did what to which object, from which state to which, and why."""

    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_display = models.CharField(_("actor"), max_length=320, blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel, default=Channel.SYSTEM)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64)
    before = models.CharField(_("before"), max_length=64, blank=True)
    after = models.CharField(_("after"), max_length=64, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    target = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    access_package = models.ForeignKey(
        AccessPackage,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    request = models.ForeignKey(
        AssignmentRequest,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="audit_events",
    )
    data = models.JSONField(_("details"), default=dict, blank=True)
    # The chain (see the module docstring): digest at insert, the rest at commit.
    digest = models.CharField(_("digest"), max_length=64, editable=False)
    sequence = models.BigIntegerField(_("sequence"), null=True, unique=True, editable=False)
    prev_hash = models.CharField(_("previous hash"), max_length=64, null=True, editable=False)
    hash = models.CharField(_("hash"), max_length=64, null=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        # target, access_package and request need no index of their own: the composite
        # indexes below start with them (fewer indexes to write for 90k events at once).
        ordering = ["-created"]
        verbose_name = _("audit event")
        indexes = [
            models.Index(fields=["-created"], name="audit_created_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["target", "-created"], name="audit_target_idx"),
            models.Index(fields=["access_package", "-created"], name="audit_package_idx"),
            models.Index(fields=["request", "created"], name="audit_request_idx"),
            # The commit trigger's "this transaction's events not chained yet", in chain order.
            models.Index(
                fields=["created", "id"],
                name="audit_unchained_idx",
                condition=models.Q(sequence__isnull=True),
            ),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="audit_append_only",
                when=pgtrigger.Before,
                operation=pgtrigger.Update | pgtrigger.Delete,
                declare=[("unchained", "entitlements_auditevent")],
                func=_APPEND_ONLY_SQL,
            ),
            pgtrigger.Trigger(
                name="audit_insert_unchained",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=_INSERT_UNCHAINED_SQL,
            ),
            pgtrigger.Trigger(
                name="audit_chain_at_commit",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                func=_QUEUE_CHAIN_SQL,
            ),
        ]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_display or 'system'}: {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only.")
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            _seal([self], using)
            super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """The head of the audit chain: the last chained event's sequence and hash (one row)."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    sequence = models.BigIntegerField(_("sequence"))
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("audit chain head")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_is_one_row")
        ]
        triggers = [
            pgtrigger.Trigger(
                name="audit_head_forward",
                when=pgtrigger.Before,
                operation=pgtrigger.Update | pgtrigger.Delete,
                func=_HEAD_FORWARD_SQL,
            )
        ]

    def __str__(self):
        return f"{self.sequence} {self.hash}"


class AuditChainQueue(models.Model):
    """A transaction's request, at its commit, to chain the events it wrote; deleted at once."""

    id = models.BigAutoField(primary_key=True)
    final = models.BooleanField(default=False)

    class Meta:
        triggers = [
            pgtrigger.Trigger(
                name="audit_chain_link",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                declare=[
                    ("head_sequence", "bigint"),
                    ("head_hash", "varchar(64)"),
                    ("pending", "record"),
                ],
                func=_CHAIN_SQL,
            )
        ]

    def __str__(self):
        return str(self.pk)
