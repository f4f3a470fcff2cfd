"""Run directory imports now, with a progress bar, and print what they changed.

    python manage.py directory_import                 # every enabled import
    python manage.py directory_import "Head office AD" --dry-run

A dry run reads the directory and prints what a run would change, writing nothing. A bad
configuration, an unreachable server or an import that is already running ends the command
with one line and a non-zero exit status.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from entitlements.connectors.base import ConnectorError
from entitlements.errors import DomainError
from identity.importing import directory_import_run
from identity.models.importing import DirectoryImport


class Command(BaseCommand):
    help = "Import people (and groups) from the LDAP / Active Directory imports configured."

    def add_arguments(self, parser):
        parser.add_argument(
            "name", nargs="?", help="the import's name (default: every enabled one)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would change; write nothing"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, name=None, dry_run=False, no_progress=False, verbosity=1, **options):
        imports = DirectoryImport.objects.select_related("system").order_by("name")
        if name:
            imports = list(imports.filter(name=name))
            if not imports:
                known = ", ".join(DirectoryImport.objects.values_list("name", flat=True))
                raise CommandError(
                    f"No directory import is named {name!r}"
                    + (f"; the imports are: {known}." if known else "; none is configured.")
                )
        else:
            imports = list(imports.filter(enabled=True))
            if not imports:
                raise CommandError("No directory import is enabled; add one in the admin.")

        def progress(label, total):
            return tqdm(
                total=total,
                desc=f"{label:>9}",
                unit=" entries",
                file=self.stderr._out,
                disable=True if no_progress or verbosity < 1 else None,
                leave=False,
            )

        failed = []
        for directory_import in imports:
            try:
                report = directory_import_run(
                    directory_import=directory_import, dry_run=dry_run, progress=progress
                )
            except (ConnectorError, DomainError) as exc:
                if len(imports) == 1:
                    raise CommandError(str(exc)) from None
                self.stderr.write(f"{directory_import.name}: {exc}")
                failed.append(directory_import.name)
                continue
            self.stdout.write(report.summary())
            if verbosity >= 1:
                for kind, examples in report.as_dict()["examples"].items():
                    for example in examples:
                        self.stdout.write(f"  {kind}: {example}")
                for error in report.errors:
                    self.stdout.write(f"  error: {error}")
            seconds = report.seconds
            self.stdout.write(
                f"  read {seconds.get('read', 0):.1f} s, applied {seconds.get('apply', 0):.1f} s"
            )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(imports)} imports failed: {', '.join(failed)}."
            )
