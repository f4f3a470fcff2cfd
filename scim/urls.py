"""The SCIM 2.0 service provider's routes, mounted at /scim/v2/: one view serves them all,
and scim2-server routes inside it (RFC 7644 §3.2 endpoints, 404 for any other path)."""

from django.urls import re_path

from . import views

app_name = "scim"
urlpatterns = [re_path(r"^(?P<path>.*)$", views.endpoint, name="endpoint")]
