"""Approval decisions in words, for the requestor's timeline and the emails."""

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from .models import ReviewResult


def _day(moment):
    return date_format(timezone.localtime(moment), "j F Y")


def shortened_sentence(row):
    """ "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example." for an approver
    row that shortened the access, else ""."""
    if row.decision != ReviewResult.APPROVED or row.approved_end is None:
        return ""
    details = {"until": _day(row.approved_end), "who": row.user.display_name}
    if row.requested_end is None:
        return _("Approved until %(until)s by %(who)s (the request asked for no end).") % details
    details["instead"] = _day(row.requested_end)
    return _("Approved until %(until)s instead of %(instead)s by %(who)s.") % details
