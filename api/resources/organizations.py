"""Graph resources of this module; registered on the API's routers by register()."""


def register(routers):
    """Adds this module's viewsets to ``routers`` (base path -> router); see api/urls.py."""
