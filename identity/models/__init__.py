"""The identity app's models, one module per concern."""

from .importing import DirectoryImport, DirectoryImportLink  # noqa: F401
