"""The identity app's models, one module per concern."""
