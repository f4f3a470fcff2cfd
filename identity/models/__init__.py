"""The identity app's models, one module per concern."""

from .guests import GuestLifecycle, GuestState  # noqa: F401
from .importing import DirectoryImport, DirectoryImportLink  # noqa: F401
