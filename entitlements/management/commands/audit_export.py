"""Write the audit evidence of a period as JSON Lines (docs/audit.md)."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from entitlements.audit import EvidenceError, audit_evidence


def parse_moment(value):
    """A date (its midnight, in the server's time zone) or an ISO 8601 date and time; None if
    it is neither."""
    try:
        moment = parse_datetime(value)
        day = None if moment else parse_date(value)
    except ValueError:
        return None
    if day:
        moment = datetime.datetime.combine(day, datetime.time())
    if moment and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _checked(lines):
    """``lines`` with its first line already taken: the export's errors come before output."""
    header = next(lines)

    def all_lines():
        yield header
        yield from lines

    return all_lines()


class Command(BaseCommand):
    help = (
        "Export the audit events created from --from (included) to --to (excluded) with their "
        "digests and links, the hash before the period and the chain's head, as JSON Lines "
        "that scripts/audit-verify-export checks without this product (docs/audit.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or ISO 8601")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD or ISO 8601")
        parser.add_argument(
            "--after-sequence",
            type=int,
            help="start just after this sequence (the previous export's last_sequence) instead "
            "of after the last event created before --from",
        )
        parser.add_argument("--output", "-o", help="a file to write (default: standard output)")

    def handle(self, *args, start, end, after_sequence, output, **options):
        moments = {}
        for name, value in (("--from", start), ("--to", end)):
            moments[name] = parse_moment(value)
            if moments[name] is None:
                raise CommandError(f"{name} {value!r} is not a date (YYYY-MM-DD) or ISO 8601 time.")
        if moments["--from"] >= moments["--to"]:
            raise CommandError("--from must be before --to.")
        lines = audit_evidence(
            start=moments["--from"], end=moments["--to"], after_sequence=after_sequence
        )
        try:
            # The header first: a bad --after-sequence is refused before a file is written.
            lines = _checked(lines)
        except EvidenceError as error:
            raise CommandError(str(error)) from error
        if output:
            with open(output, "w", encoding="ascii") as file:
                file.writelines(lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
