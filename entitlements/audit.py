"""Writing the audit trail: every service function records its transition here.

``audit_record`` appends one event; ``audit_event`` prepares one (unsaved) for
``audit_bulk``, which appends many in one statement. Nothing else builds AuditEvent rows.
"""

from django.utils import timezone

from .models import AuditEvent, Channel


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
