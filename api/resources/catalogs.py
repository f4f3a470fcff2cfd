"""``/identityGovernance/entitlementManagement/catalogs`` (accessPackageCatalog)."""

from rest_framework import serializers

from entitlements.configuration import catalog_save
from entitlements.models import Catalog, Channel

from ..graph.serializers import GraphSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import ENTITLEMENTS_READ, ENTITLEMENTS_WRITE
from .common import GraphDateTimeField, delete_config, graph_clean, require, save_config


class CatalogSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", max_length=256)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    catalogType = serializers.ChoiceField(
        source="catalog_type", choices=Catalog.CatalogType.choices, read_only=True
    )
    state = serializers.ChoiceField(
        choices=Catalog.State.choices, required=False, default=Catalog.State.PUBLISHED
    )
    isExternallyVisible = serializers.BooleanField(
        source="is_externally_visible", required=False, default=False
    )
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)


class CatalogViewSet(GraphViewSet):
    context = f"{BASE}/catalogs"
    serializer_class = CatalogSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    filter_fields = {
        "id": "id",
        "displayName": "display_name",
        "description": "description",
        "catalogType": "catalog_type",
        "state": "state",
        "isExternallyVisible": "is_externally_visible",
        "createdDateTime": "created",
        "modifiedDateTime": "modified",
    }
    default_order = ("display_name",)

    def visible(self):
        return Catalog.objects.restrict(self.request.user, "view")

    def create(self, request):
        require(request.user, "add", model=Catalog, what="catalogs")
        values = self.body()
        catalog = Catalog(**values)
        graph_clean(catalog, CatalogSerializer)
        catalog_save(actor=request.user, catalog=catalog, channel=Channel.API)
        return self.created(catalog)

    def partial_update(self, request, pk=None):
        catalog = self.get_object()
        require(request.user, "change", catalog, what="this catalog")
        for name, value in self.body(partial=True).items():
            setattr(catalog, name, value)
        save_config(request.user, catalog, serializer_class=CatalogSerializer)
        return self.updated(catalog)

    def destroy(self, request, pk=None):
        catalog = self.get_object()
        require(request.user, "delete", catalog, what="this catalog")
        delete_config(request.user, catalog)
        return self.no_content()


def register(routers):
    routers["identityGovernance/entitlementManagement"].register(
        "catalogs", CatalogViewSet, basename="catalog"
    )
