"""Writing and checking the audit trail: every service function records its transition here.

``audit_record`` appends one event; ``audit_event`` prepares one (unsaved) for
``audit_bulk``, which appends many in one statement. Nothing else builds AuditEvent rows.
Each event is digested when written and chained when its transaction commits
(``entitlements.models.audit``); ``audit_chain_check`` walks the chain and
``audit_evidence`` writes a period of it for an auditor (docs/audit.md).
"""

import contextlib
import dataclasses
import json
from collections.abc import Iterator

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from .models import AuditEvent, Channel
from .models.audit import (
    CONTENT_FIELDS,
    GENESIS_HASH,
    canonical_content,
    chain_head,
    content_digest,
    link_hash,
)

EVIDENCE_FORMAT = "entitlements-audit-evidence/1"
_CHAIN_ROW = (*CONTENT_FIELDS, "digest", "sequence", "prev_hash", "hash")


def _pk(value):
    return getattr(value, "pk", value)


def audit_event(
    *,
    action,
    obj,
    actor=None,
    channel=Channel.SYSTEM,
    before="",
    after="",
    reason="",
    target=None,
    access_package=None,
    request=None,
    data=None,
    now=None,
):
    """An unsaved audit event about ``obj``: a model instance, or a (model, pk) pair when a
    set-based job has only the id. ``target``, ``access_package`` and ``request`` may be rows
    or their primary keys."""
    model, pk = obj if isinstance(obj, tuple) else (type(obj), obj.pk)
    return AuditEvent(
        created=now or timezone.now(),
        actor=actor,
        actor_display=str(actor) if actor else "",
        channel=channel,
        action=action,
        object_type=model._meta.label,
        object_id=str(pk),
        before=before or "",
        after=after or "",
        reason=reason or "",
        target_id=_pk(target),
        access_package_id=_pk(access_package),
        request_id=_pk(request),
        data=data or {},
    )


def audit_record(**fields):
    """Append one audit event (the arguments of ``audit_event``) and return it."""
    event = audit_event(**fields)
    event.save(force_insert=True)
    return event


def audit_for_request(*, request, action, obj=None, after="", data=None, **fields):
    """Append an audit event about ``request`` or one of its parts (an approval stage): the
    person, package and request it concerns come from the request."""
    return audit_record(
        action=action,
        obj=obj if obj is not None else request,
        after=after,
        target=request.target_id,
        access_package=request.access_package_id,
        request=request,
        data=data or None,
        **fields,
    )


def audit_bulk(events):
    """Append many events prepared with ``audit_event`` in one statement; for set-based jobs."""
    return AuditEvent.objects.bulk_create(events, batch_size=2000)


# --------------------------------------------------------------------------------------
# Checking the chain and exporting evidence
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """The first link of the chain that does not hold."""

    event_id: str
    sequence: int | None
    problem: str
    expected: str
    stored: str

    def __str__(self):
        return (
            f"Broken link at event {self.event_id}, sequence {self.sequence}: {self.problem}: "
            f"expected {self.expected}, stored {self.stored}"
        )


@dataclasses.dataclass(frozen=True)
class ChainReport:
    count: int
    head_hash: str
    broken: ChainBreak | None


@contextlib.contextmanager
def _snapshot():
    """One transaction that sees one state of the whole chain, however long the walk."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _link_problem(row, expected_sequence, expected_prev):
    """What is wrong with this event's link (problem, expected, stored), or None."""
    if row["sequence"] != expected_sequence:
        return (
            "sequence (an event missing or inserted)",
            str(expected_sequence),
            str(row["sequence"]),
        )
    if row["prev_hash"] != expected_prev:
        return "previous hash", expected_prev, str(row["prev_hash"])
    digest = content_digest(row, stored=True)
    if digest != row["digest"]:
        return "content digest (the event was changed)", digest, row["digest"]
    expected_hash = link_hash(row["prev_hash"], row["digest"])
    if expected_hash != row["hash"]:
        return "hash", expected_hash, str(row["hash"])
    return None


def _anchor_break(anchor, count, stored):
    sequence, anchor_hash = anchor
    return ChainBreak(
        "(anchor)",
        sequence,
        "the anchor kept earlier (events removed, e.g. by TRUNCATE, or the chain rewritten)",
        anchor_hash,
        stored if stored else f"no event {sequence}: the chain has {count}",
    )


def audit_chain_check(*, chunk_size=5000, progress=None, anchor=None):
    """Walk the whole chain in sequence order, recomputing every digest and hash; the head
    row must be the last link and every event must be chained. ``anchor``: a (sequence,
    hash) kept outside the database (an earlier head), which the chain must still hold.
    ``progress(count)`` is called after each chunk."""
    report = _chain_check(chunk_size=chunk_size, progress=progress, anchor=anchor)
    if anchor and not report.broken and report.count < anchor[0]:
        return ChainReport(report.count, report.head_hash, _anchor_break(anchor, report.count, ""))
    return report


def _chain_check(*, chunk_size, progress, anchor):
    if anchor and anchor[0] == 0 and anchor[1] != GENESIS_HASH:
        return ChainReport(0, GENESIS_HASH, _anchor_break(anchor, 0, GENESIS_HASH))
    with _snapshot():
        count, expected_prev = 0, GENESIS_HASH
        rows = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
        for values in rows.values_list(*_CHAIN_ROW).iterator(chunk_size=chunk_size):
            row = dict(zip(_CHAIN_ROW, values, strict=True))
            problem = _link_problem(row, count + 1, expected_prev)
            if problem:
                return ChainReport(
                    count, expected_prev, ChainBreak(str(row["id"]), row["sequence"], *problem)
                )
            count, expected_prev = count + 1, row["hash"]
            if anchor and count == anchor[0] and row["hash"] != anchor[1]:
                return ChainReport(count, expected_prev, _anchor_break(anchor, count, row["hash"]))
            if progress and count % chunk_size == 0:
                progress(count)
        head_state = chain_head()
        if head_state != (count, expected_prev):
            broken = ChainBreak(
                "(head)",
                head_state[0],
                "chain head (events missing at the end)",
                f"{count} {expected_prev}",
                f"{head_state[0]} {head_state[1]}",
            )
            return ChainReport(count, expected_prev, broken)
        unchained = AuditEvent.objects.filter(sequence__isnull=True).order_by("created", "id")
        orphan = unchained.values_list("id", flat=True).first()
        if orphan:
            broken = ChainBreak(
                str(orphan), None, "not chained (written with the triggers off)", "a link", "none"
            )
            return ChainReport(count, expected_prev, broken)
        return ChainReport(count, expected_prev, None)


class EvidenceError(ValueError):
    """An evidence export that cannot be written as asked (the message says why)."""


def audit_evidence(*, start, end, after_sequence=None, chunk_size=5000) -> Iterator[str]:
    """The evidence for a period [start, end), as JSON Lines: a header with the hash before
    the first exported event, the events, a trailer with the last hash and the chain's head.
    The events are chosen by sequence, so consecutive periods never overlap: from just after
    the last event created before ``start`` (or after ``after_sequence``, the previous
    export's last sequence) to the last event created before ``end``; the chain is in commit
    order, so a few events created just outside the period can be in it. docs/audit.md says
    how to verify it."""
    with _snapshot():
        head_sequence, head_hash = chain_head()
        head_info = {"sequence": head_sequence, "hash": head_hash}
        chained = AuditEvent.objects.filter(sequence__isnull=False)

        def last_before(moment):
            rows = chained.filter(created__lt=moment).aggregate(last=Max("sequence"))
            return rows["last"] or 0

        if after_sequence is None:
            after_sequence = last_before(start)
        elif not 0 <= after_sequence <= head_sequence:
            raise EvidenceError(
                f"--after-sequence {after_sequence}: the chain has events 1 to {head_sequence}."
            )
        last = last_before(end)
        prev_hash = GENESIS_HASH
        if after_sequence:
            prev_hash = chained.filter(sequence=after_sequence).values_list("hash", flat=True)[0]
        first = last > after_sequence
        first_sequence, last = (after_sequence + 1, last) if first else (None, None)
        yield _line(
            {
                "record": "header",
                "format": EVIDENCE_FORMAT,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "exported_at": timezone.now().isoformat(),
                "first_sequence": first_sequence,
                "last_sequence": last,
                "prev_hash": prev_hash,
                "head": head_info,
                "digest": "sha256(canonical JSON of content: sorted keys, no spaces, ASCII)",
                "hash": "sha256(prev_hash + digest) as hex text; the chain starts at 64 zeros",
            }
        )
        count, last_hash = 0, prev_hash
        if first:
            stretch = chained.filter(sequence__gte=first_sequence, sequence__lte=last)
            stretch = stretch.order_by("sequence")
            for values in stretch.values_list(*_CHAIN_ROW).iterator(chunk_size=chunk_size):
                row = dict(zip(_CHAIN_ROW, values, strict=True))
                content = canonical_content(row, stored=True)
                yield _line(
                    {
                        "record": "event",
                        "sequence": row["sequence"],
                        "content": content,
                        "digest": row["digest"],
                        "prev_hash": row["prev_hash"],
                        "hash": row["hash"],
                    }
                )
                count, last_hash = count + 1, row["hash"]
        yield _line(
            {"record": "trailer", "events": count, "last_hash": last_hash, "head": head_info}
        )


def _line(record):
    return json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n"
