"""The API's URLs: Graph's paths under ``/v1.0/``, the token endpoint and the schema."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from .resources.catalogs import CatalogViewSet
from .views import unknown_segment

BASE = "v1.0/identityGovernance/entitlementManagement/"


class GraphRouter(SimpleRouter):
    """Graph's paths have no trailing slash; ids are any segment without ``/`` or ``(``."""

    def __init__(self):
        super().__init__(trailing_slash=False)


entitlement_management = GraphRouter()
entitlement_management.register("catalogs", CatalogViewSet, basename="catalog")

urlpatterns = [
    path(BASE, include(entitlement_management.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("v1.0/$metadata", SpectacularAPIView.as_view(), name="api-metadata"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^v1\.0(?:/.*)?$", unknown_segment),
]
