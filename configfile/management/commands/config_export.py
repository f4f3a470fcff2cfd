"""Write the configuration as a YAML document that config_apply reads."""

from django.core.management.base import BaseCommand, CommandError

from configfile.document import ConfigError, dump_yaml, read_database, write_document
from entitlements.models import Catalog


class Command(BaseCommand):
    help = (
        "Write catalogs, their admin roles and resources, access packages, policies, approval "
        "stages, questions and access review settings as YAML, with stable keys (names, "
        "emails, URLs; never database ids) and a stable order: exporting twice gives the same "
        "bytes. config_apply reads it back."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--catalog",
            action="append",
            dest="catalogs",
            metavar="NAME",
            help="export only this catalog (repeat for several); default: every catalog",
        )
        parser.add_argument(
            "--output", "-o", metavar="FILE", help="write to FILE instead of standard output"
        )

    def handle(self, *args, catalogs=None, output=None, **options):
        if catalogs:
            known = set(
                Catalog.objects.filter(display_name__in=catalogs).values_list(
                    "display_name", flat=True
                )
            )
            missing = [name for name in catalogs if name not in known]
            if missing:
                raise CommandError(f"No catalog named {', '.join(missing)}.")
        try:
            text = dump_yaml(write_document(read_database(catalogs or None)))
        except ConfigError as error:
            raise CommandError(str(error)) from None
        if output:
            try:
                with open(output, "w", encoding="utf-8") as file:
                    file.write(text)
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
        else:
            self.stdout.write(text, ending="")
