"""Check the audit trail's hash chain from its first event to its head."""

import re
import time

from django.core.management.base import BaseCommand, CommandError

from entitlements.audit import audit_chain_check
from entitlements.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit chain in sequence order, recomputing each event's digest from its "
        "content and each link's hash; print 'N events, chain intact, head <hash>', or exit "
        "non-zero with one line naming the first broken link (docs/audit.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=5000, help="events read per round trip"
        )
        parser.add_argument(
            "--anchor",
            help="SEQUENCE:HASH of a head printed earlier and kept outside the database; the "
            "chain must still hold it (a TRUNCATE or a rewritten chain is reported)",
        )

    def handle(self, *args, chunk_size, anchor, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if anchor is not None:
            sequence, _colon, anchor_hash = anchor.partition(":")
            if not (sequence.isdigit() and re.fullmatch(r"[0-9a-f]{64}", anchor_hash)):
                raise CommandError("--anchor must be SEQUENCE:HASH (a number, 64 hex digits).")
            anchor = (int(sequence), anchor_hash)
        total = AuditEvent.objects.count()
        started = time.monotonic()

        def progress(count):
            # Progress on stderr every ~100k events, so stdout keeps the one result line.
            if count % 100_000 < chunk_size:
                rate = count / max(time.monotonic() - started, 1e-6)
                self.stderr.write(f"checked {count} of {total} events ({rate:,.0f}/s)")

        report = audit_chain_check(chunk_size=chunk_size, progress=progress, anchor=anchor)
        if report.broken:
            raise CommandError(str(report.broken), returncode=1)
        self.stdout.write(f"{report.count} events, chain intact, head {report.head_hash}")
