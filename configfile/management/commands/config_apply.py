"""Show what a YAML configuration file would change, and apply it in one transaction."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone

from configfile.document import ConfigError, read_database, read_document
from configfile.plan import make_plan
from directory.models import User
from entitlements.models import Catalog

MAX_FILE_SIZE = 10 * 1024 * 1024  # characters: a bound on what one file may cost to read


class _DryRun(Exception):
    """Raised to roll back a dry run's checked changes."""


def managed_catalogs(wanted, prune):
    """The catalogs a file manages: those it names; with --prune, every catalog (except the
    built-in one when the file leaves it out)."""
    names = {key[0] for key in wanted.catalogs}
    if prune:
        others = Catalog.objects.exclude(catalog_type=Catalog.CatalogType.SERVICE_DEFAULT)
        names |= set(others.values_list("display_name", flat=True))
    return names


class Command(BaseCommand):
    help = (
        "Compare a YAML configuration file (as config_export writes it) with the database, "
        "show the plan (+ create, ~ change, - delete) and apply it in one transaction through "
        "the audited configuration services. Inside the catalogs the file names, it is the "
        "whole truth: what it leaves out is deleted. Catalogs it does not name are left alone, "
        "unless --prune. Applying the same file twice changes nothing the second time."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the YAML file ('-' reads standard input)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="show the plan and check it against the database; change nothing",
        )
        parser.add_argument(
            "--yes",
            "--no-input",
            action="store_true",
            dest="yes",
            help="apply without asking for confirmation",
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="also delete the catalogs the file does not name (never the built-in one)",
        )
        parser.add_argument(
            "--actor",
            metavar="EMAIL",
            help="the administrator the audit trail names (an active superuser); "
            "default: the system",
        )

    def handle(self, *args, file, dry_run, yes, prune, actor=None, **options):
        actor = self._actor(actor)
        text = self._read(file)
        plan = self._plan(text, prune)
        shown = plan.render()
        self.stdout.write(shown)
        if not plan:
            return
        if dry_run:
            self._warn(self._run(text, prune, actor, shown, commit=False))
            self.stdout.write("Dry run: the plan checks out against the database; nothing changed.")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Nothing applied: give --yes to apply without a prompt.")
            if input("Apply these changes? [y/N] ").strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing applied.")
        self._warn(self._run(text, prune, actor, shown, commit=True))
        counts = plan.counts()
        self.stdout.write(
            f"Applied: {counts['create']} created, {counts['change']} changed, "
            f"{counts['delete']} deleted."
        )

    def _actor(self, email):
        if email is None:
            return None
        user = User.objects.filter(email__iexact=email).first()
        if user is None or not user.is_active or not user.is_superuser:
            raise CommandError(f"--actor: no active administrator (superuser) {email}.")
        return user

    def _read(self, file):
        try:
            if file == "-":
                text = sys.stdin.read(MAX_FILE_SIZE + 1)
            else:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read(MAX_FILE_SIZE + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}.") from None
        if len(text) > MAX_FILE_SIZE:
            raise CommandError(
                f"Cannot read {file}: larger than {MAX_FILE_SIZE // (1024 * 1024)} MB."
            )
        return text

    def _plan(self, text, prune):
        try:
            wanted = read_document(text)
            return make_plan(wanted, read_database(managed_catalogs(wanted, prune)))
        except ConfigError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise CommandError(_database_error(error)) from None

    def _run(self, text, prune, actor, shown, *, commit):
        """Plan again inside the transaction and apply, if nothing changed meanwhile."""
        try:
            with transaction.atomic():
                plan = self._plan(text, prune)
                if plan.render() != shown:
                    raise CommandError(
                        "The configuration changed while the plan was shown; nothing was "
                        "applied. Run config_apply again."
                    )
                warnings = plan.apply(actor=actor, now=timezone.now())
                if not commit:
                    raise _DryRun
        except _DryRun:
            pass
        except ConfigError as error:
            raise CommandError(f"Nothing applied: {error}") from None
        except DatabaseError as error:  # a last resort: the checks should have said why
            raise CommandError(_database_error(error)) from None
        return warnings

    def _warn(self, warnings):
        for warning in warnings:
            self.stdout.write(self.style.WARNING(f"Warning: {warning}"))


def _database_error(error):
    """One line for a database refusal the file's checks did not foresee."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"Nothing applied: the database refused the change: {first[:300]}"
