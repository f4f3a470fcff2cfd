from django.db import migrations


def create_general_catalog(apps, schema_editor):
    Catalog = apps.get_model("entitlements", "Catalog")
    Catalog.objects.get_or_create(
        display_name="General",
        defaults={
            "description": "The built-in catalog for resources and packages of the whole organisation.",
            "catalog_type": "serviceDefault",
            "state": "published",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0001_initial")]

    operations = [migrations.RunPython(create_general_catalog, migrations.RunPython.noop)]
