"""The OpenAPI description of the API (drf-spectacular), in Graph's shapes.

``GraphAutoSchema`` (the API's ``DEFAULT_SCHEMA_CLASS``) describes what every
``GraphViewSet`` answers without each view repeating it:

- a list (``list``) answers ``collection_of(serializer)``: ``{"@odata.context",
  "@odata.nextLink", "@odata.count", "value": [...]}`` and takes ``COLLECTION_PARAMETERS``
  (``$filter``, ``$select``, ``$expand``, ``$top``, ``$skiptoken``, ``$orderby``,
  ``$count``, ``$search`` where the view searches, the ``ConsistencyLevel`` header);
- an entity (``retrieve``) takes ``ENTITY_PARAMETERS`` (``$select``, ``$expand``);
- ``partial_update`` answers 204, or the entity where the view sets
  ``update_returns_entity``; ``destroy`` answers 204; ``create`` 201 with ``Location``;
- every operation may answer Graph's error body (``GraphErrorSerializer``) with 400, 401,
  403 and 404; a write also 409 and 415; every response carries ``request-id``;
- an ``{id}`` in a path is a UUID;
- properties of a response are not ``required``: ``$select`` may leave any of them out.

A custom action (``@action``) states what it takes and answers with ``graph_schema``.
"""

import re
from functools import cache

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

ID_PATTERN = "^[^/()]+$"  # GraphViewSet.lookup_value_regex, as drf-spectacular writes it

# --------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------


class GraphInnerErrorSerializer(serializers.Serializer):
    """Where and when the error happened: quote ``request-id`` when asking for help."""

    date = serializers.CharField(required=False)
    client_request_id = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        # Graph's names have hyphens, which Python's do not
        fields["request-id"] = fields.pop("request_id")
        fields["client-request-id"] = fields.pop("client_request_id")
        return fields


class GraphErrorDetailSerializer(serializers.Serializer):
    """Graph's error: a code a program can test (``ResourceNotFound``) and a message for
    people."""

    code = serializers.CharField()
    message = serializers.CharField()
    innerError = GraphInnerErrorSerializer(required=False)  # noqa: N815 - Graph's name


class GraphErrorSerializer(serializers.Serializer):
    """The body of every failed call, as Microsoft Graph answers."""

    error = GraphErrorDetailSerializer()


@cache
def collection_of(serializer_class):
    """The serializer of a Graph collection response whose ``value`` holds
    ``serializer_class`` items (component ``<Name>Collection``)."""
    name = serializer_class.__name__.removesuffix("Serializer")
    fields = {
        "@odata.context": serializers.URLField(required=False),
        "@odata.count": serializers.IntegerField(
            required=False, help_text="The number of items matching, with $count=true."
        ),
        "@odata.nextLink": serializers.URLField(
            required=False, help_text="The next page; absent on the last page."
        ),
        "value": serializer_class(many=True),
        "__doc__": f"A page of {name} items, in Graph's collection shape.",
        "__module__": serializer_class.__module__,
    }
    return type(f"{name}CollectionSerializer", (serializers.Serializer,), fields)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from POST /oauth2/v2.0/token (client credentials) "
            "or a personal token: Authorization: Bearer <token>.",
        }


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


def _query(name, description, type_=str, **kwargs):
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kwargs)


FILTER = _query(
    "$filter",
    "An OData filter on the collection's filterable properties: eq, ne, gt, ge, lt, le, "
    "and, or, not, in, startswith, contains, any; e.g. displayName eq 'Sales'.",
)
SELECT = _query("$select", "Comma-separated properties to return; id is always returned.")
EXPAND = _query("$expand", "Comma-separated navigation properties to include, e.g. accessPackage.")
TOP = OpenApiParameter(
    "$top",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.QUERY,
    description="The page size (at most 999; 100 when absent).",
)
SKIPTOKEN = _query("$skiptoken", "Opaque: the next page, as given in @odata.nextLink.")
ORDERBY = _query("$orderby", "Comma-separated 'property [asc|desc]'.")
COUNT = OpenApiParameter(
    "$count",
    {"type": "string", "enum": ["true", "false"]},
    OpenApiParameter.QUERY,
    description="true adds @odata.count, the number of items matching.",
)
SEARCH = _query("$search", 'Free-text search, e.g. "displayName:sales".')
CONSISTENCY_LEVEL = OpenApiParameter(
    "ConsistencyLevel",
    str,
    OpenApiParameter.HEADER,
    description="Graph's 'eventual', which its SDKs send with $count and $search; accepted "
    "and not needed here.",
)

ENTITY_PARAMETERS = [SELECT, EXPAND]
COLLECTION_PARAMETERS = [FILTER, SELECT, EXPAND, TOP, SKIPTOKEN, ORDERBY, COUNT, CONSISTENCY_LEVEL]

REQUEST_ID = OpenApiParameter(
    "request-id",
    {"type": "string"},
    OpenApiParameter.HEADER,
    response=True,
    description="The server's id of this request (also in an error's innerError).",
)
LOCATION = OpenApiParameter(
    "Location",
    {"type": "string", "format": "uri"},
    OpenApiParameter.HEADER,
    response=[201],
    description="The URL of the created entity.",
)


def _uses(serializer_class, parameters):
    """``parameters`` without ``$expand`` when the type has nothing to expand."""
    if serializer_class is not None and not getattr(serializer_class, "expandable", None):
        return [p for p in parameters if p.name != "$expand"]
    return list(parameters)


# --------------------------------------------------------------------------------------
# The schema class and the decorator
# --------------------------------------------------------------------------------------

ERRORS_ALWAYS = ("400", "401", "403", "404")
ERRORS_ON_WRITE = ("409", "415")


class GraphAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with Graph's conventions (see the module's docstring)."""

    def _action(self):
        return getattr(self.view, "action", None)

    def _searches(self):
        from .views import GraphViewSet

        search = getattr(type(self.view), "search", None)
        return search is not None and search is not GraphViewSet.search

    def get_tags(self):
        """The entity set a path belongs to: ``catalogs``, ``accessPackages``, ``users``..."""
        parts = [p for p in self.path.strip("/").split("/") if p]
        for base in (["v1.0", "identityGovernance", "entitlementManagement"], ["v1.0"]):
            if parts[: len(base)] == base and len(parts) > len(base):
                rest = parts[len(base) :]
                if rest[0] in ("identityGovernance",) and len(rest) > 1:
                    return [rest[1]]
                return [rest[0].split("(")[0]]
        return super().get_tags()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        serializer = getattr(self.view, "serializer_class", None)
        action = self._action()
        if action == "list":
            parameters = _uses(serializer, COLLECTION_PARAMETERS) + parameters
            if self._searches():
                parameters.append(SEARCH)
        elif action == "retrieve":
            parameters = _uses(serializer, ENTITY_PARAMETERS) + parameters
        return [*parameters, REQUEST_ID, LOCATION]

    def get_response_serializers(self):
        action = self._action()
        serializer = super().get_response_serializers()
        if action == "list" and serializer is not None and not isinstance(serializer, dict):
            return collection_of(serializer if isinstance(serializer, type) else type(serializer))
        return serializer

    def _is_list_view(self, serializer=None):
        # Graph never answers a bare array: lists are collection_of(...) objects.
        return self._naming_list

    _naming_list = False

    def get_operation_id(self):
        self._naming_list = self._action() == "list"  # "..._list", not "..._retrieve"
        try:
            operation_id = super().get_operation_id()
        finally:
            self._naming_list = False
        return re.sub(r"[^A-Za-z0-9_.]", "", operation_id)  # filterByCurrentUser(on='')

    def _get_response_bodies(self, direction="response"):
        action = self._action()
        if (
            action == "partial_update"
            and isinstance(self.get_response_serializers(), serializers.BaseSerializer)
            and not getattr(self.view, "update_returns_entity", False)
        ):
            responses = {"204": {"description": "Updated; no content."}}
            responses["204"].update(self._headers_for("204", direction))
        else:
            responses = super()._get_response_bodies(direction)
        codes = ERRORS_ALWAYS + (ERRORS_ON_WRITE if self.method not in ("GET", "HEAD") else ())
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    GraphErrorSerializer, code, direction=direction
                )
                responses[code]["description"] = _ERROR_DESCRIPTIONS[code]
        return responses

    def _headers_for(self, code, direction):
        headers = self._get_response_headers_for_code(code, direction)
        return {"headers": headers} if headers else {}

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response" and not isinstance(
            serializer, (GraphErrorSerializer, GraphErrorDetailSerializer)
        ):
            schema.pop("required", None)  # $select may leave out any property
        return schema

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter["in"] == "path" and schema.get("pattern") == ID_PATTERN:
                parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameters


def graph_paths(endpoints, **kwargs):
    """SPECTACULAR_SETTINGS' preprocessing hook: Graph's function paths as clients write
    them, ``filterByCurrentUser(on='{on}')``, not with the router's regex escapes."""
    return [
        (path.replace("\\(", "(").replace("\\)", ")"), path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]


_ERROR_DESCRIPTIONS = {
    "400": "BadRequest / InvalidFilter: the request or a query option is not valid.",
    "401": "InvalidAuthenticationToken: no valid token or session.",
    "403": "Forbidden: the token lacks the permission, or the caller the role.",
    "404": "ResourceNotFound: no such id among what the caller may see.",
    "409": "Conflict: the object's state does not allow this (the message says why).",
    "415": "UnsupportedMediaType: the body must be application/json.",
}


def graph_schema(
    *,
    summary=None,
    description=None,
    request=None,
    response=None,
    collection=None,
    status=None,
    parameters=(),
    on=None,
    **kwargs,
):
    """``extend_schema`` for a Graph operation (errors and ``request-id`` are added for you).

    - ``collection=EntitySerializer``: answers ``collection_of(EntitySerializer)`` and takes
      the collection query options (as a list view does);
    - ``response=EntitySerializer``: answers one entity (``status`` 200 unless given) and
      takes ``$select``/``$expand``;
    - neither: answers ``status`` (204 unless given) with no body;
    - ``request``: the body's serializer; leave it out for an action without a body;
    - ``on=("target", "createdBy")``: the values of ``filterByCurrentUser(on='...')``.
    """
    parameters = list(parameters)
    if collection is not None:
        responses = {status or 200: collection_of(collection)}
        parameters = _uses(collection, COLLECTION_PARAMETERS) + parameters
    elif response is not None:
        responses = {status or 200: response}
        parameters = _uses(response, ENTITY_PARAMETERS) + parameters
    else:
        responses = {status or 204: None}
    if on is not None:
        parameters.append(
            OpenApiParameter(
                "on",
                {"type": "string", "enum": list(on)},
                OpenApiParameter.PATH,
                description="Whose items: the signed-in caller as this role.",
            )
        )
    return extend_schema(
        summary=summary,
        description=description,
        request=request,
        responses=responses,
        parameters=parameters,
        **kwargs,
    )


__all__ = [
    "COLLECTION_PARAMETERS",
    "ENTITY_PARAMETERS",
    "GraphAutoSchema",
    "GraphErrorSerializer",
    "OpenApiTypes",
    "collection_of",
    "graph_schema",
]
