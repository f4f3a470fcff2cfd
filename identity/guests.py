"""Guests: who is an external user, of which connected organization, and when they go.

A person whose email domain belongs to a connected organization is a guest of it; a
domain the settings name as internal (``INTERNAL_EMAIL_DOMAINS``) is always a member's,
whatever an organization lists. A new external user signing in from an unknown domain gets
a *proposed* organization when some policy lets all external users request. When a guest's
last assignment ends, the entitlement management settings say what happens: nothing, sign-in
blocked at once, or blocked and the account removed after a while (docs/identity.md).
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import (
    AppRoleAssignment,
    ConnectedOrganization,
    EntitlementManagementSettings,
    GrantSource,
    GroupMembership,
    SiteRoleAssignment,
    User,
)
from entitlements import signals as lifecycle
from entitlements.audit import audit_bulk, audit_event
from entitlements.errors import InvalidRequest
from entitlements.models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AuditEvent,
    Catalog,
)
from entitlements.queue import enqueue

from .models.guests import GuestLifecycle, GuestState

Action = EntitlementManagementSettings.ExternalUserLifecycleAction
# How far back the sweep looks for ends it may have missed; the receivers see them at once.
SWEEP_HORIZON = timedelta(days=7)


def email_domain(email):
    """The part of ``email`` after the last "@", lower case ("" when there is none)."""
    _local, at, domain = (email or "").strip().rpartition("@")
    return domain.lower().rstrip(".") if at else ""


def internal_domains():
    """The email domains of the organization's own people (members)."""
    return {d.strip().lower() for d in getattr(settings, "INTERNAL_EMAIL_DOMAINS", ()) if d}


def is_internal(email):
    return email_domain(email) in internal_domains()


def organization_for_domain(domain):
    """The connected organization listing ``domain``, or None. A configured organization
    wins over a proposed one; among equals the first by name."""
    if not domain:
        return None
    # JSON containment is not portable to SQLite, and organizations are few (Entra allows
    # 2,500): read their domains and match here.
    candidates = ConnectedOrganization.objects.exclude(domains=[]).order_by("display_name")
    best = None
    for organization in candidates.only("id", "display_name", "domains", "state"):
        listed = {str(d).strip().lower().rstrip(".") for d in organization.domains or ()}
        if domain not in listed:
            continue
        if organization.state == ConnectedOrganization.State.CONFIGURED:
            return organization
        best = best or organization
    return best


def classify(email):
    """``(user_type, connected_organization or None)`` for a person with this address.

    A domain of a connected organization (configured, or proposed earlier for a new
    external user) makes a guest of that organization; any other address, and every
    internal domain, a member. Reads only: proposing an organization for an unknown
    domain is ``connected_organization_propose``'s job, at sign-in.
    """
    domain = email_domain(email)
    if not domain or domain in internal_domains():
        return User.UserType.MEMBER, None
    organization = organization_for_domain(domain)
    if organization is None:
        return User.UserType.MEMBER, None
    return User.UserType.GUEST, organization


# --------------------------------------------------------------------------------------
# Connected organizations proposed at sign-in
# --------------------------------------------------------------------------------------


def external_users_welcome():
    """Whether some policy lets any external user request (Entra's "All users (all connected
    organizations + any new external users)") in a catalog enabled for external users."""
    return AssignmentPolicy.objects.filter(
        allowed_target_scope=AllowedTargetScope.ALL_EXTERNAL_USERS,
        access_package__catalog__state=Catalog.State.PUBLISHED,
        access_package__catalog__is_externally_visible=True,
    ).exists()


def connected_organization_propose(*, domain, actor=None, now=None):
    """The connected organization of ``domain``: the one listing it, or a new proposed one
    named after it, for administrators to review (audited "connectedOrganization.proposed")."""
    now = now or timezone.now()
    domain = (domain or "").strip().lower()
    if not domain:
        raise ValueError("A proposed organization needs a domain.")
    existing = organization_for_domain(domain)
    if existing is not None:
        return existing
    taken = set(
        ConnectedOrganization.objects.filter(display_name__startswith=domain).values_list(
            "display_name", flat=True
        )
    )
    name, n = domain, 1
    while name in taken:
        n += 1
        name = f"{domain} ({n})"
    try:
        # Two people of a new domain signing in together: the name's unique constraint lets
        # one insert win; the other reads the winner's row.
        with transaction.atomic():
            organization = ConnectedOrganization(
                display_name=name,
                description=_("Proposed when a new external user from %(domain)s signed in.")
                % {"domain": domain},
                domains=[domain],
                state=ConnectedOrganization.State.PROPOSED,
                created=now,
            )
            organization.save(force_insert=True)
            audit_bulk(
                [
                    audit_event(
                        action="connectedOrganization.proposed",
                        obj=organization,
                        actor=actor,
                        after=ConnectedOrganization.State.PROPOSED,
                        reason=_("A new external user signed in from %(domain)s.")
                        % {"domain": domain},
                        data={"domain": domain},
                        now=now,
                    )
                ]
            )
    except IntegrityError:
        existing = organization_for_domain(domain)
        if existing is None:
            raise
        return existing
    return organization


def guest_sign_up(*, email, display_name, source, now=None):
    """A person signing in with a verified ``email`` the directory does not know: their new
    guest account, or None when they may not join.

    A domain of a connected organization makes a guest of it. Any other external domain
    joins only while some policy welcomes all external users, through a proposed
    organization; an internal domain never signs up (members come from the directory).
    """
    from .services import user_provision  # identity.services classifies through this module

    now = now or timezone.now()
    user_type, organization = classify(email)
    try:
        with transaction.atomic():
            if user_type != User.UserType.GUEST:
                if not email_domain(email) or is_internal(email) or not external_users_welcome():
                    return None
                organization = connected_organization_propose(domain=email_domain(email), now=now)
            return user_provision(
                attributes={
                    "email": email,
                    "display_name": display_name or email.split("@")[0],
                    "user_type": User.UserType.GUEST,
                    "connected_organization": organization,
                    "company_name": organization.display_name,
                },
                source=source,
                now=now,
            )
    except (IntegrityError, InvalidRequest):
        # The same person signing in twice at once: the first sign-in made the account.
        existing = User.objects.filter(email__iexact=email).first()
        if existing is None:
            raise
        return existing


# --------------------------------------------------------------------------------------
# The lifecycle of a guest whose last assignment ended
# --------------------------------------------------------------------------------------


def _lifecycle_source():
    from .services import Source

    return Source(kind=Source.LIFECYCLE, name="guest lifecycle")


def _open_assignments():
    return Assignment.objects.filter(target=OuterRef("pk"), state__in=OPEN_ASSIGNMENT_STATES)


def _open_requests():
    return AssignmentRequest.objects.filter(
        target=OuterRef("pk"), request_type__in=ADD_REQUEST_TYPES, state__in=OPEN_REQUEST_STATES
    )


def guests_without_access(user_ids=None):
    """Guests with no open assignment, none on its way (an open request for them: it is
    decided first) and at least one assignment that ended, each with the time their last
    assignment ended (``last_end``)."""
    guests = User.objects.filter(user_type=User.UserType.GUEST)
    if user_ids is not None:
        guests = guests.filter(pk__in=list(user_ids))
    ended = Assignment.objects.filter(target=OuterRef("pk"), expired_datetime__isnull=False)
    last_end = Subquery(ended.order_by("-expired_datetime").values("expired_datetime")[:1])
    return (
        guests.filter(~Exists(_open_assignments()), ~Exists(_open_requests()))
        .annotate(last_end=last_end)
        .filter(last_end__isnull=False)
    )


def guests_lifecycle_apply(*, user_ids, now=None):
    """Act on these people whose assignment just ended, as the settings say; returns how
    many guests had their sign-in blocked. Members, guests who still have access and ends
    already acted on are left alone, so running it twice changes nothing."""
    now = now or timezone.now()
    current = EntitlementManagementSettings.current()
    if current.external_user_lifecycle_action == Action.NONE:
        return 0
    blocked = 0
    for user_id in guests_without_access(user_ids).values_list("pk", flat=True):
        blocked += guest_block(user_id=user_id, current=current, now=now)
    return blocked


def guest_block(*, user_id, current, now):
    """Block the sign-in of a guest whose last assignment ended (sessions end on commit) and
    record it, so the sweep removes them later when the settings say so."""
    from .services import user_disable

    with transaction.atomic():
        # Lock order as in user_disable and in deciding a request: the person's open requests
        # (one found: wait for its decision), then their row, which makes a second run for
        # the same end wait, then see it.
        waiting = AssignmentRequest.objects.select_for_update(of=("self",)).filter(
            target_id=user_id, request_type__in=ADD_REQUEST_TYPES, state__in=OPEN_REQUEST_STATES
        )
        if list(waiting.values_list("pk", flat=True)):
            return False
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None or not user.is_guest:
            return False
        last_end = guests_without_access([user.pk]).values_list("last_end", flat=True).first()
        if last_end is None:
            return False  # they were given access again meanwhile
        row = GuestLifecycle.objects.select_for_update().filter(user=user).first()
        if row is not None and (
            row.state == GuestState.DELETED or row.last_assignment_ended >= last_end
        ):
            return False
        action = current.external_user_lifecycle_action
        reason = _("Their last access package assignment ended.")
        was_active = user.is_active
        user_disable(user=user, source=_lifecycle_source(), reason=reason, now=now)
        if row is None:
            row = GuestLifecycle(user=user, created=now)
        row.state, row.blocked_at, row.deleted_at = GuestState.BLOCKED, now, None
        row.last_assignment_ended = last_end
        row.save()
        delete_at = None
        if action == Action.BLOCK_SIGN_IN_AND_DELETE:
            delete_at = now + current.duration_until_external_user_deleted_after_blocked
        audit_bulk(
            [
                audit_event(
                    action="guest.signInBlocked",
                    obj=user,
                    before="enabled" if was_active else "disabled",
                    after="disabled",
                    reason=reason,
                    target=user,
                    data={
                        "lifecycle_action": action,
                        "last_assignment_ended": last_end.isoformat(),
                        "removal_due": delete_at.isoformat() if delete_at else None,
                    },
                    now=now,
                )
            ]
        )
    return True


def guest_remove(*, lifecycle_id, now=None):
    """Remove a blocked guest whose time has come; returns whether they were removed.

    The row stays, because requests, assignments and the audit trail point at it; what made
    it a person goes: name, address and other attributes, password, sign-in identities,
    directory memberships and roles, sponsors. A guest enabled again, or given access again,
    since being blocked is not removed: the pending removal is canceled.
    """
    now = now or timezone.now()
    from .services import sessions_end

    with transaction.atomic():
        row = (
            GuestLifecycle.objects.select_for_update()
            .filter(pk=lifecycle_id, state=GuestState.BLOCKED)
            .first()
        )
        if row is None:
            return False
        user = User.objects.select_for_update().get(pk=row.user_id)
        why_not = _why_not_removed(user, row)
        if why_not:
            row.state = GuestState.CANCELED
            row.save(update_fields=["state", "modified"])
            audit_bulk(
                [
                    audit_event(
                        action="guest.removalCanceled",
                        obj=user,
                        before=GuestState.BLOCKED,
                        after=GuestState.CANCELED,
                        reason=why_not,
                        target=user,
                        now=now,
                    )
                ]
            )
            return False
        removed = _anonymise(user)
        row.state, row.deleted_at = GuestState.DELETED, now
        row.save(update_fields=["state", "deleted_at", "modified"])
        audit_bulk(
            [
                audit_event(
                    action="guest.deleted",
                    obj=user,
                    before=GuestState.BLOCKED,
                    after=GuestState.DELETED,
                    reason=_("Blocked since %(when)s after their last assignment ended.")
                    % {"when": row.blocked_at.isoformat()},
                    target=user,
                    data={"removed": removed},
                    now=now,
                )
            ]
        )
        transaction.on_commit(lambda: sessions_end(user_id=user.pk))
    return True


def _why_not_removed(user, row):
    if user.is_active:
        return _("The account was enabled again.")
    if Assignment.objects.filter(target=user, state__in=OPEN_ASSIGNMENT_STATES).exists():
        return _("The guest has access again.")
    enabled_since = AuditEvent.objects.filter(
        target=user, action="user.enabled", created__gt=row.blocked_at
    )
    if enabled_since.exists():
        return _("The account was enabled again since its sign-in was blocked.")
    return ""


def _anonymise(user):
    """Strip the person from ``user``; returns what was removed, counted."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    removed = {
        "group_memberships": GroupMembership.objects.filter(
            user=user, source=GrantSource.DIRECT
        ).delete()[0],
        "app_roles": AppRoleAssignment.objects.filter(
            user=user, source=GrantSource.DIRECT
        ).delete()[0],
        "site_roles": SiteRoleAssignment.objects.filter(
            user=user, source=GrantSource.DIRECT
        ).delete()[0],
        "sign_in_identities": SocialAccount.objects.filter(user=user).delete()[0],
        "email_addresses": EmailAddress.objects.filter(user=user).delete()[0],
    }
    user.sponsors.clear()
    user.externally_sponsored_organizations.clear()
    user.internally_sponsored_organizations.clear()
    user.groups.clear()
    user.user_permissions.clear()
    user.email = f"deleted-{user.pk}@deleted.invalid"
    user.display_name = _("Removed guest")
    for name in ("department", "job_title", "company_name", "employee_id", "preferred_language"):
        setattr(user, name, "")
    user.manager = None
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()
    user.save()
    return removed


def guests_lifecycle_sweep(*, now=None):
    """The safety net and the clock: block guests whose last assignment ended unnoticed (a
    lost task), and remove the blocked guests whose time has come. Returns the counts."""
    now = now or timezone.now()
    current = EntitlementManagementSettings.current()
    action = current.external_user_lifecycle_action
    done = {"blocked": 0, "removed": 0}
    if action == Action.NONE:
        return done
    # Ends before the settings last changed were under other settings; older ones than the
    # horizon were seen by the receivers or by an earlier sweep.
    since = now - SWEEP_HORIZON
    if current.pk is not None and current.modified > since:
        since = current.modified
    # From the assignments that ended lately, less those ends already acted on: a few rows,
    # whatever the number of guests.
    acted_on = GuestLifecycle.objects.filter(user=OuterRef("target_id")).filter(
        Q(state=GuestState.DELETED) | Q(last_assignment_ended__gte=OuterRef("expired_datetime"))
    )
    unseen_ends = (
        Assignment.objects.filter(
            expired_datetime__gt=since,
            expired_datetime__lte=now,
            target__user_type=User.UserType.GUEST,
        )
        .filter(~Exists(acted_on))
        .values("target_id")
    )
    missed = (
        guests_without_access()
        .filter(pk__in=unseen_ends, last_end__lte=now)
        .order_by()
        .values_list("pk", flat=True)
    )
    for user_id in list(missed):
        done["blocked"] += guest_block(user_id=user_id, current=current, now=now)
    if action == Action.BLOCK_SIGN_IN_AND_DELETE:
        cutoff = now - current.duration_until_external_user_deleted_after_blocked
        due = GuestLifecycle.objects.filter(state=GuestState.BLOCKED, blocked_at__lte=cutoff)
        for lifecycle_id in list(due.order_by("blocked_at").values_list("pk", flat=True)):
            done["removed"] += guest_remove(lifecycle_id=lifecycle_id, now=now)
    return done


# --------------------------------------------------------------------------------------
# Receivers: an assignment ended, perhaps a guest's last one
# --------------------------------------------------------------------------------------


def _enqueue_for(user_ids):
    from .tasks import apply_guest_lifecycle  # the tasks module imports this one

    ids = sorted({str(pk) for pk in user_ids})
    if ids:
        enqueue(apply_guest_lifecycle, ids)


@receiver(lifecycle.assignment_ended)
def on_assignment_ended(sender, assignment, **kwargs):
    if assignment.target.is_guest:
        _enqueue_for([assignment.target_id])


@receiver(lifecycle.assignments_ended)
def on_assignments_ended(sender, assignment_ids, **kwargs):
    guests = Assignment.objects.filter(
        id__in=assignment_ids, target__user_type=User.UserType.GUEST
    ).values_list("target_id", flat=True)
    _enqueue_for(set(guests))


@receiver(lifecycle.request_denied)
@receiver(lifecycle.request_canceled)
@receiver(lifecycle.request_expired)
def on_request_closed(sender, request, **kwargs):
    """A guest whose access ended while they waited for more: acted on once it is decided."""
    if request.target.is_guest:
        _enqueue_for([request.target_id])
