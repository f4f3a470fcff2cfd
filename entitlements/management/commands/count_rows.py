"""The number of rows in each of the product's tables, to check a restored backup."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, router


class Command(BaseCommand):
    help = (
        "Print the number of rows of every table the product keeps, one `app_label.Model count` "
        "line each, sorted by name. Run it on the database you dumped and on the restored one: "
        "taken at the same moment, the two outputs are identical (docs/backups.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="the database to count (default: default)"
        )

    def handle(self, *args, database, **options):
        models = [
            model
            for model in apps.get_models(include_auto_created=True)
            if model._meta.managed
            and not model._meta.proxy
            and router.allow_migrate_model(database, model)
        ]
        for model in sorted(models, key=lambda model: model._meta.label):
            # The base manager: a default manager that hides rows must not hide them here.
            count = model._base_manager.using(database).count()
            self.stdout.write(f"{model._meta.label} {count}")
