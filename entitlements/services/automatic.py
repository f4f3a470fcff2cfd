"""Automatic assignment policies: access given and taken away by a rule over user attributes.

``users_reevaluate`` is what the directory's doors (admin, SCIM, LDAP import, SSO) ask for once
they have changed some people: those people's assignments are checked for eligibility (and,
for automatic policies, the rule is applied to them).
"""

from django.utils import timezone

from .eligibility import assignments_remove_ineligible


def users_reevaluate(*, user_ids, now=None):
    """Re-evaluate the access of the users ``user_ids`` after a change in the directory.

    Returns how many assignments ended. Losing eligibility is recorded the first time it is
    seen and ends the assignment after the policy's grace period (``eligibility``).
    """
    now = now or timezone.now()
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return 0
    return assignments_remove_ineligible(user_ids=user_ids, now=now)
