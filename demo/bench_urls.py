"""The product's URLs plus the minimal view ``bench_pages`` compares every page with.

Loaded only through ``demo.bench_settings``, so the minimal view never ships as an endpoint.
"""

from django.http import HttpResponse
from django.urls import path

from config.urls import handler400, handler500
from config.urls import urlpatterns as product_urlpatterns
from directory.models import User

__all__ = ["handler400", "handler500", "urlpatterns"]


def minimal(request):
    """One primary-key query on the same stack (middleware, database, gunicorn)."""
    user = User.objects.filter(pk=request.GET.get("id")).values_list("pk", flat=True).first()
    return HttpResponse(str(user), content_type="text/plain")


urlpatterns = [path("bench/minimal", minimal, name="bench_minimal"), *product_urlpatterns]
