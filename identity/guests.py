"""Guests: who is an external user, of which connected organization, and when they go.

A person whose email domain belongs to a connected organization is a guest of it; a
domain the settings name as internal (``INTERNAL_EMAIL_DOMAINS``) is always a member's,
whatever an organization lists. A new external user signing in from an unknown domain gets
a *proposed* organization when some policy lets all external users request. When a guest's
last assignment ends, the entitlement management settings say what happens (docs/identity.md).
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import ConnectedOrganization, User
from entitlements.audit import audit_bulk, audit_event
from entitlements.models import AllowedTargetScope, AssignmentPolicy, Catalog


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
                description=_("Proposed when %(email)s signed in for the first time.")
                % {"email": f"someone@{domain}"},
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


def proposed_organizations_count():
    return ConnectedOrganization.objects.filter(state=ConnectedOrganization.State.PROPOSED).count()


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
