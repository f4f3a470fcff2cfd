"""Writing the audit trail: every service function records its transition here."""

from django.utils import timezone

from .models import AuditEvent, Channel


def audit_record(
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
    """Append one audit event for ``obj`` (any model instance) and return it."""
    return AuditEvent.objects.create(
        created=now or timezone.now(),
        actor=actor,
        actor_display=str(actor) if actor else "",
        channel=channel,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        before=before or "",
        after=after or "",
        reason=reason or "",
        target=target,
        access_package=access_package,
        request=request,
        data=data or {},
    )


def audit_for_request(*, request, action, obj=None, after="", data=None, **fields):
    """Append an audit event about ``request`` or one of its parts (an approval stage): the
    person, package and request it concerns come from the request."""
    return audit_record(
        action=action,
        obj=obj if obj is not None else request,
        after=after,
        target=request.target,
        access_package=request.access_package,
        request=request,
        data=data or None,
        **fields,
    )


def audit_bulk(events):
    """Append many prepared (unsaved) AuditEvent rows in one statement; for set-based jobs."""
    return AuditEvent.objects.bulk_create(events, batch_size=2000)
