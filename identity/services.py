"""Joiners, movers and leavers: the services every door calls to change a person or a group.

The admin, SCIM, the directory import and single sign-on all create, change, disable and
enable people and groups through these functions, so a change has the same consequences
whichever system made it. Each one takes the ``Source`` that caused the change and writes it
into the audit trail (``{"source": kind, "source_name": name}``), locks the row it changes,
writes nothing when nothing changed, and on commit asks for the people it changed to be
re-evaluated (automatic policies and eligibility).
"""

import json
from dataclasses import dataclass

from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from approvals.services import approvals_reresolve_managers, approvals_reroute_from
from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.audit import audit_bulk, audit_event
from entitlements.errors import InvalidRequest
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    Assignment,
    AssignmentRequest,
    Channel,
    RequestType,
)
from entitlements.queue import enqueue_on_commit
from entitlements.selectors import CANCELABLE_STATES
from entitlements.services.ending import assignments_end
from entitlements.services.requests import request_cancel
from entitlements.tasks import users_reevaluate

from .guests import classify


@dataclass(frozen=True)
class Source:
    """The system that caused a change: the admin, SCIM, an LDAP import, single sign-on, a
    rule or the product's own lifecycle jobs; ``name`` says which one (an LDAP server's name,
    a SCIM client's), ``id`` the object's id there."""

    ADMIN = "admin"
    SCIM = "scim"
    LDAP = "ldap"
    SSO = "sso"
    RULE = "rule"
    LIFECYCLE = "lifecycle"
    KINDS = (ADMIN, SCIM, LDAP, SSO, RULE, LIFECYCLE)

    kind: str
    name: str = ""
    id: str = ""

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"Unknown source {self.kind!r}; one of {', '.join(self.KINDS)}.")

    @property
    def channel(self):
        """The audit trail's door for this source."""
        if self.kind == self.ADMIN:
            return Channel.ADMIN
        if self.kind == self.SCIM:
            return Channel.API
        return Channel.SYSTEM

    def data(self, **extra):
        data = {"source": self.kind, "source_name": self.name}
        if self.id:
            data["source_id"] = self.id
        return {**data, **extra}


# Fields a door may set on a person; the rest (password, permissions, sign-in times) have
# their own paths. is_active goes through user_disable / user_enable.
USER_FIELDS = (
    "email",
    "display_name",
    "department",
    "job_title",
    "company_name",
    "employee_id",
    "user_type",
    "manager",
    "connected_organization",
    "preferred_language",
)
GROUP_FIELDS = ("display_name", "description", "mail")


def _json(value):
    """A field's value as the audit trail keeps it: foreign keys as ids."""
    if isinstance(value, models.Model):
        return str(value.pk)
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _field_values(model, allowed, values):
    """``values`` with foreign keys given as rows or ids, refusing fields a door may not set."""
    clean = {}
    for name, value in values.items():
        attname = name[:-3] if name.endswith("_id") and name not in allowed else name
        if attname not in allowed:
            raise InvalidRequest(
                _("%(field)s cannot be set here.") % {"field": name}, field=attname
            )
        field = model._meta.get_field(attname)
        if field.is_relation and value is not None and not isinstance(value, models.Model):
            try:
                value = field.related_model.objects.get(pk=value)
            except (field.related_model.DoesNotExist, ValueError, ValidationError) as exc:
                raise InvalidRequest(
                    _("No %(what)s has the id %(id)s.")
                    % {"what": field.related_model._meta.verbose_name, "id": value},
                    field=attname,
                ) from exc
        if isinstance(value, str) and not field.is_relation:
            value = value.strip()
        if attname == "email" and value:
            value = value.lower()
        clean[attname] = value
    return clean


def _changed(obj, values):
    """Apply ``values`` to ``obj``; returns {field: (before, after)} for the ones that differ."""
    changes = {}
    for name, value in values.items():
        field = obj._meta.get_field(name)
        before = getattr(obj, field.attname)
        after = value.pk if isinstance(value, models.Model) else value
        if field.is_relation and before is not None and after is not None:
            same = str(before) == str(after)
        else:
            same = before == after
        if not same:
            changes[name] = (getattr(obj, name), value)
            setattr(obj, name, value)
    return changes


def _before_after(changes):
    return {
        "before": {name: _json(before) for name, (before, _after) in changes.items()},
        "after": {name: _json(after) for name, (_before, after) in changes.items()},
    }


def users_reevaluate_on_commit(user_ids):
    """Ask for these people's automatic policies and eligibility to be evaluated again once
    the transaction commits (for a door that wrote memberships itself)."""
    ids = sorted({str(pk) for pk in user_ids})
    if ids:
        enqueue_on_commit(users_reevaluate, ids)


def _lock_user(user):
    return User.objects.select_for_update().get(pk=user.pk)


# --------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------


def _joiner_values(attributes, classified):
    """The checked field values of a new person; ``classified`` caches classify by domain."""
    values = _field_values(User, USER_FIELDS, attributes)
    email = values.get("email")
    if not email:
        raise InvalidRequest(_("A person needs an email address."), field="email")
    if not values.get("display_name"):
        values["display_name"] = email.split("@")[0]
    if "user_type" not in values:
        domain = email.rpartition("@")[2]
        if domain not in classified:
            classified[domain] = classify(email)
        user_type, organization = classified[domain]
        values["user_type"] = user_type
        values.setdefault("connected_organization", organization)
    return values


def _email_taken(email):
    return InvalidRequest(
        _("Someone with the email %(email)s already exists.") % {"email": email}, field="email"
    )


def _joiner_event(user, values, source, actor, now):
    return audit_event(
        action="user.provisioned",
        obj=user,
        actor=actor,
        channel=source.channel,
        target=user,
        after="enabled" if user.is_active else "disabled",
        data=source.data(after={name: _json(v) for name, v in values.items()}),
        now=now,
    )


def user_provision(*, attributes, source, actor=None, now=None):
    """A joiner: create the person ``attributes`` describe (User field names) and return them.

    Without a ``user_type`` the email's domain decides: a domain of a connected organization
    makes a guest of that organization. A second person with the same email is refused, also
    when two doors create them at the same moment (the unique index decides).
    """
    now = now or timezone.now()
    values = _joiner_values(attributes, {})
    email = values["email"]
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise _email_taken(email)
        user = User(created=now, **values)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError as exc:
            raise _email_taken(email) from exc
        audit_bulk([_joiner_event(user, values, source, actor, now)])
        users_reevaluate_on_commit([user.pk])
    return user


def users_provision_many(*, rows, source, actor=None, now=None):
    """Joiners in bulk (an import's first run): ``user_provision`` for each of ``rows``, in a
    few statements. All or none: a refused row raises InvalidRequest naming it (its position
    and email) and creates nobody."""
    now = now or timezone.now()
    classified, prepared, seen = {}, [], set()
    for number, attributes in enumerate(rows, start=1):
        try:
            values = _joiner_values(attributes, classified)
            if values["email"] in seen:
                raise _email_taken(values["email"])
        except InvalidRequest as exc:
            raise InvalidRequest(
                _("Person %(n)s (%(email)s): %(message)s")
                % {"n": number, "email": attributes.get("email", ""), "message": exc.message},
                field=exc.field,
            ) from exc
        seen.add(values["email"])
        prepared.append(values)
    if not prepared:
        return []
    with transaction.atomic():
        taken = (
            User.objects.annotate(lower_email=Lower("email"))
            .filter(lower_email__in=seen)
            .values_list("lower_email", flat=True)
            .first()
        )
        if taken:
            raise _email_taken(taken)
        users = [User(created=now, **values) for values in prepared]
        for user in users:
            user.set_unusable_password()
        try:
            with transaction.atomic():
                User.objects.bulk_create(users, batch_size=1000)
        except IntegrityError as exc:
            raise InvalidRequest(
                _("Someone with one of these emails was created meanwhile."), field="email"
            ) from exc
        audit_bulk(
            [
                _joiner_event(user, values, source, actor, now)
                for user, values in zip(users, prepared, strict=True)
            ]
        )
        users_reevaluate_on_commit([user.pk for user in users])
    return users


def user_update(*, user, changes, source, actor=None, now=None):
    """A mover: change the person's fields; returns the names of the fields that changed.

    ``is_active`` among the changes disables or enables them through ``user_disable`` /
    ``user_enable``. Values equal to the current ones change nothing and write no event.
    """
    now = now or timezone.now()
    changes = dict(changes)
    active = changes.pop("is_active", None)
    values = _field_values(User, USER_FIELDS, changes)
    changed = set()
    with transaction.atomic():
        if "manager" in values or active is False:
            _lock_open_requests_of(user)  # before the person's row: see user_disable
        locked = _lock_user(user)
        email = values.get("email")
        taken = User.objects.filter(email__iexact=email).exclude(pk=locked.pk)
        if email and email != locked.email and taken.exists():
            raise InvalidRequest(
                _("Someone with the email %(email)s already exists.") % {"email": email},
                field="email",
            )
        if values.get("manager") is not None and values["manager"].pk == locked.pk:
            raise InvalidRequest(_("A person cannot be their own manager."), field="manager")
        diff = _changed(locked, values)
        if diff:
            locked.save(update_fields=[*diff, "modified"])
            audit_bulk(
                [
                    audit_event(
                        action="user.updated",
                        obj=locked,
                        actor=actor,
                        channel=source.channel,
                        target=locked,
                        data=source.data(**_before_after(diff)),
                        now=now,
                    )
                ]
            )
            changed.update(diff)
            users_reevaluate_on_commit([locked.pk])
        if "manager" in diff:
            # Stages resolved from their manager (or, for their reports, manager's manager).
            reports = User.objects.filter(manager_id=locked.pk).values_list("pk", flat=True)
            approvals_reresolve_managers(
                target_ids=[locked.pk, *reports],
                reason=_("The manager of %(name)s changed.") % {"name": locked.display_name},
                data=source.data(),
                now=now,
            )
        if active is not None and bool(active) != locked.is_active:
            if active:
                user_enable(user=locked, source=source, actor=actor, now=now)
            else:
                user_disable(user=locked, source=source, actor=actor, now=now)
            changed.add("is_active")
        for name in diff:
            setattr(user, name, getattr(locked, name))
        user.is_active = locked.is_active
    return changed


def user_disable(*, user, source, actor=None, reason="", now=None):
    """A leaver: the person can no longer sign in, and everything they had or waited for ends.

    Their sessions end; the approval stages they were to decide go to the stage's other
    approvers, or to its fallback approvers (``approvals_reroute_from``); their waiting
    requests are canceled; their access is removed through the normal lifecycle (systemRemove
    requests, revoked by the delivery path; no email to someone disabled). All
    of it is audited with the source. Disabling someone already disabled changes nothing and
    writes no event; returns whether this call disabled them.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Lock order: the person's open requests, then their row. Deciding a request locks it,
        # then its target's row (separation of duties), so taking them the other way round
        # here could deadlock with an approval of one of their requests.
        _lock_open_requests_of(user)
        locked = _lock_user(user)
        if not locked.is_active:
            return False
        locked.is_active = False
        locked.save(update_fields=["is_active", "modified"])
        audit_bulk(
            [
                audit_event(
                    action="user.disabled",
                    obj=locked,
                    actor=actor,
                    channel=source.channel,
                    before="enabled",
                    after="disabled",
                    reason=reason,
                    target=locked,
                    data=source.data(),
                    now=now,
                )
            ]
        )
        sessions_end(user_id=locked.pk)
        why = _leaver_reason(locked, source, reason)
        approvals_reroute_from(user=locked, reason=why, data=source.data(), now=now)
        _requests_cancel(locked, why, now)
        _access_remove(locked, source, why, now)
    user.is_active = False
    return True


def _leaver_reason(user, source, reason):
    """The reason every consequence of disabling ``user`` gives, naming its source."""
    where = f"{source.kind} {source.name}".strip()
    text = _("%(name)s was disabled (%(source)s).") % {"name": user.display_name, "source": where}
    return f"{text} {reason}".strip() if reason else text


def _lock_open_requests_of(user):
    return list(
        AssignmentRequest.objects.select_for_update(of=("self",))
        .filter(target_id=user.pk, state__in=OPEN_REQUEST_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _requests_cancel(user, reason, now):
    """Cancel, as the system, the person's requests still waiting (for approval or their
    start); those being delivered end with their assignment."""
    waiting = AssignmentRequest.objects.filter(
        target_id=user.pk, state__in=CANCELABLE_STATES
    ).order_by("pk")
    for request in waiting:
        request_cancel(actor=None, request=request, channel=Channel.SYSTEM, reason=reason, now=now)


def _access_remove(user, source, reason, now):
    """End every open assignment of the person with a systemRemove request each, as one batch
    (one revocation task for all of them, the set-based signal)."""
    open_ids = list(
        Assignment.objects.filter(target_id=user.pk, state__in=OPEN_ASSIGNMENT_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if open_ids:
        assignments_end(
            assignment_ids=open_ids,
            request_type=RequestType.SYSTEM_REMOVE,
            reason=reason,
            notify=True,
            data=source.data(notify=True),
            batch=True,
            now=now,
        )


def user_enable(*, user, source, actor=None, now=None):
    """Let a disabled person sign in again; returns whether this call enabled them. Access
    that ended when they were disabled stays ended: automatic policies give theirs back."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_user(user)
        if locked.is_active:
            return False
        locked.is_active = True
        locked.save(update_fields=["is_active", "modified"])
        audit_bulk(
            [
                audit_event(
                    action="user.enabled",
                    obj=locked,
                    actor=actor,
                    channel=source.channel,
                    before="disabled",
                    after="enabled",
                    target=locked,
                    data=source.data(),
                    now=now,
                )
            ]
        )
        users_reevaluate_on_commit([locked.pk])
    user.is_active = True
    return True


def sessions_end(*, user_id):
    """End every signed-in session of the person (the database session store); returns how
    many ended. Other session stores stop them anyway: a disabled user fails authentication
    on their next request."""
    user_id = str(user_id)
    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == user_id:
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


# --------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------


def group_provision(*, attributes, source, actor=None, now=None):
    """Create the group ``attributes`` describe (Group field names) and return it."""
    now = now or timezone.now()
    values = _field_values(Group, GROUP_FIELDS, attributes)
    if not values.get("display_name"):
        raise InvalidRequest(_("A group needs a name."), field="display_name")
    with transaction.atomic():
        if Group.objects.filter(display_name=values["display_name"]).exists():
            raise InvalidRequest(
                _("A group named %(name)s already exists.") % {"name": values["display_name"]},
                field="display_name",
            )
        group = Group(created=now, **values)
        group.save(force_insert=True)
        audit_bulk(
            [
                audit_event(
                    action="group.provisioned",
                    obj=group,
                    actor=actor,
                    channel=source.channel,
                    data=source.data(after={name: _json(v) for name, v in values.items()}),
                    now=now,
                )
            ]
        )
    return group


def group_update(*, group, changes, source, actor=None, now=None):
    """Change a group's name, description or mail; returns the names of the fields changed."""
    now = now or timezone.now()
    values = _field_values(Group, GROUP_FIELDS, changes)
    with transaction.atomic():
        locked = Group.objects.select_for_update().get(pk=group.pk)
        name = values.get("display_name")
        if name and Group.objects.filter(display_name=name).exclude(pk=locked.pk).exists():
            raise InvalidRequest(
                _("A group named %(name)s already exists.") % {"name": name},
                field="display_name",
            )
        diff = _changed(locked, values)
        if not diff:
            return set()
        locked.save(update_fields=[*diff, "modified"])
        audit_bulk(
            [
                audit_event(
                    action="group.updated",
                    obj=locked,
                    actor=actor,
                    channel=source.channel,
                    data=source.data(**_before_after(diff)),
                    now=now,
                )
            ]
        )
    for name in diff:
        setattr(group, name, getattr(locked, name))
    return set(diff)


def group_members_change(*, group, add=(), remove=(), source, actor=None, now=None):
    """Add and remove the group's direct members; returns (added, removed) user ids.

    Memberships an access package gave are not this door's to remove: they end with their
    assignment. Adding a member already there and removing one who is not change nothing.
    """
    now = now or timezone.now()
    add_ids = {str(getattr(u, "pk", u)) for u in add}
    remove_ids = {str(getattr(u, "pk", u)) for u in remove} - add_ids
    with transaction.atomic():
        # The group row is the lock: two syncs of one group's members take turns.
        locked = Group.objects.select_for_update().get(pk=group.pk)
        members = GroupMembership.objects.filter(group=locked, role=GroupMembership.Role.MEMBER)
        present = {str(pk) for pk in members.values_list("user_id", flat=True)}
        known = {str(pk) for pk in User.objects.filter(pk__in=add_ids).values_list("pk", flat=True)}
        if add_ids - known:
            raise InvalidRequest(
                _("No person has the id %(id)s.") % {"id": sorted(add_ids - known)[0]},
                field="members",
            )
        added = sorted(add_ids - present)
        direct = members.filter(user_id__in=remove_ids, source=GrantSource.DIRECT)
        removed = sorted(str(pk) for pk in direct.values_list("user_id", flat=True))
        if not added and not removed:
            return [], []
        GroupMembership.objects.bulk_create(
            [
                GroupMembership(
                    group=locked,
                    user_id=pk,
                    role=GroupMembership.Role.MEMBER,
                    source=GrantSource.DIRECT,
                    created=now,
                )
                for pk in added
            ]
        )
        direct.delete()
        audit_bulk(
            [
                audit_event(
                    action="group.membersChanged",
                    obj=locked,
                    actor=actor,
                    channel=source.channel,
                    data=source.data(added=added, removed=removed),
                    now=now,
                )
            ]
        )
        users_reevaluate_on_commit([*added, *removed])
    return added, removed
