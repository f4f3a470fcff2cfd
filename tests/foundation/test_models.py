"""Every model of the product follows the same conventions."""

import pytest
from django.apps import apps
from django.db import models

PRODUCT_APPS = ("directory", "entitlements", "notifications", "approvals", "reviews")
MODELS = [m for m in apps.get_models() if m._meta.app_label in PRODUCT_APPS]
# The audit chain's bookkeeping, read and written only by its PostgreSQL triggers
# (docs/audit.md): a one-row head keyed 1, and a queue row per committing transaction,
# deleted in the same commit. Neither is a product object nor has a lifetime to stamp.
CHAIN_BOOKKEEPING = {"entitlements.AuditChainHead", "entitlements.AuditChainQueue"}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_model_has_a_uuid_id_times_a_docstring_and_a_readable_name(model):
    if model._meta.label in CHAIN_BOOKKEEPING:
        assert model.__doc__ and any("__str__" in vars(cls) for cls in model.__mro__[:-2])
        return
    assert isinstance(model._meta.pk, models.UUIDField)
    names = {f.name for f in model._meta.get_fields()}
    assert {"created", "modified"} <= names
    assert model.__doc__ and not model.__doc__.startswith(model.__name__ + "(")
    assert any("__str__" in vars(cls) for cls in model.__mro__ if cls is not models.Model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_index_has_a_name(model):
    assert all(index.name for index in model._meta.indexes)
