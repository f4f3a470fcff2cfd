"""The SCIM 2.0 service provider's routes, mounted at /scim/v2/."""

app_name = "scim"
urlpatterns = []
