"""Guests: who is an external user, and of which connected organization.

A person whose email domain belongs to a connected organization is a guest of it; a
domain the settings name as internal (``INTERNAL_EMAIL_DOMAINS``) is always a member's,
whatever an organization lists.
"""

from django.conf import settings

from directory.models import ConnectedOrganization, User


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
