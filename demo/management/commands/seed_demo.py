"""Build the demo organisation, and optionally bulk data at Entra's tenant limits."""

import sys

from django.core.management.base import BaseCommand, CommandError

from demo.generator import Generator, default_sizes
from demo.organisation import DEMO_PASSWORD, SIGN_INS, seed_organisation


def sign_in_lines():
    """The demo sign-ins as aligned lines: email, name, who they are."""
    email_width = max(len(email) for email, _name, _who in SIGN_INS)
    name_width = max(len(name) for _email, name, _who in SIGN_INS)
    lines = [f"Demo sign-ins (password for all: {DEMO_PASSWORD})"]
    lines += [
        f"  {email:<{email_width}}  {name:<{name_width}}  {who}" for email, name, who in SIGN_INS
    ]
    return lines


def _size(value):
    try:
        number = int(str(value).replace("_", "").replace(",", ""))
    except ValueError:
        number = -1
    if number < 0:
        raise CommandError(f"Expected a whole number of 0 or more, got {value!r}.")
    return number


class Command(BaseCommand):
    help = (
        "Create the demo organisation (safe to run again: nothing changes the second time). "
        "With --users/--packages/--assignments, also generate that many gen-* objects in bulk "
        "for benchmarks, up to Entra's limits (100000 users, 20000 packages, 300000 "
        "assignments); the sizes are totals, so a second run adds only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--directory-only",
            action="store_true",
            help="only the people, groups, applications and sites, no catalogs or packages "
            "(to try config_apply on)",
        )
        parser.add_argument("--users", type=str, default="0", help="generated users in total")
        parser.add_argument("--packages", type=str, default="0", help="generated packages")
        parser.add_argument(
            "--assignments", type=str, default="0", help="generated delivered assignments"
        )
        parser.add_argument(
            "--groups", type=str, default=None, help="generated groups (default: one per package)"
        )
        parser.add_argument(
            "--catalogs",
            type=str,
            default=None,
            help="generated catalogs (default: one per 100 packages)",
        )

    def handle(self, *args, **options):
        sizes = default_sizes(
            users=_size(options["users"]),
            packages=_size(options["packages"]),
            assignments=_size(options["assignments"]),
            groups=None if options["groups"] is None else _size(options["groups"]),
            catalogs=None if options["catalogs"] is None else _size(options["catalogs"]),
        )
        quiet = options["verbosity"] == 0
        generator = Generator(progress_file=options.get("stderr") or sys.stderr, quiet=quiet)
        try:
            generator.check(sizes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        result = seed_organisation(directory_only=options["directory_only"])
        if not quiet:
            self.stdout.write(result.summary())

        if any(vars(sizes).values()):
            generated = generator.run(sizes)
            if not quiet:
                self.stdout.write(self._generated_summary(sizes, generated))

        if not quiet:
            self.stdout.write("")
            for line in sign_in_lines():
                self.stdout.write(line)

    def _generated_summary(self, sizes, generated):
        if not generated.changed:
            totals = ", ".join(f"{n:,} {kind}" for kind, n in vars(sizes).items() if n)
            return f"Generated data already in place ({totals}): nothing changed."
        parts = [
            f"{n:,} {kind} in {generated.seconds[kind]:.1f} s"
            for kind, n in generated.created.items()
            if n
        ]
        total = sum(generated.seconds.values())
        return f"Generated {', '.join(parts)} ({total:.1f} s in all)."
