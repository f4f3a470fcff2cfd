"""The API's resources, one module per group of Graph entity sets."""
