"""The Graph-compatible REST API (``/v1.0/...``), OAuth 2.0 tokens and the OpenAPI schema.

Resources, paths, property names and state values follow Microsoft Graph v1.0
``identityGovernance/entitlementManagement``, so Graph scripts and the official SDKs work
against the product with only the base URL and the token changed. Every read goes through
``Model.objects.restrict`` and every write through the services the portal and admin use.
"""
