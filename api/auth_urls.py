"""The token endpoint and the pages for API credentials (see api.authentication)."""

urlpatterns = []
