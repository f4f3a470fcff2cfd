"""The API's URLs: Graph's paths under ``/v1.0/``, the token endpoint and the schema.

Each module of ``api.resources`` registers its viewsets on the router of its base path
(``register(routers)``), so adding a resource touches only its own module.
"""

from importlib import import_module

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .views import unknown_segment


class GraphRouter(SimpleRouter):
    """Graph's paths have no trailing slash."""

    def __init__(self):
        super().__init__(trailing_slash=False)


RESOURCE_MODULES = [
    "catalogs",
    "catalog_resources",
    "packages",
    "policies",
    "requests",
    "assignments",
    "approvals",
    "organizations",
    "directory",
    "reviews",
]

# base path under /v1.0/ -> router
routers = {
    "identityGovernance/entitlementManagement": GraphRouter(),
    "identityGovernance/accessReviews": GraphRouter(),
    "": GraphRouter(),
}
for _name in RESOURCE_MODULES:
    import_module(f"api.resources.{_name}").register(routers)

urlpatterns = [
    *[path(f"v1.0/{base}/" if base else "v1.0/", include(r.urls)) for base, r in routers.items()],
    path("", include("api.auth_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("v1.0/$metadata", SpectacularAPIView.as_view(), name="api-metadata"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^v1\.0(?:/[\s\S]*)?$", unknown_segment),
]
