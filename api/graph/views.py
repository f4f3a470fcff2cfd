"""The base of every API resource: Graph's lists, entities, creates, updates and deletes.

A resource is a ``GraphViewSet`` that names its entity set (``context``), its serializer,
the rows the caller may see (``visible``: always ``Model.objects.restrict``), which Graph
properties ``$filter`` and ``$orderby`` may use (``filter_fields``) and its default order.
Writes go to the services; the views only translate.
"""

import hashlib
import json
import uuid

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import status, viewsets
from rest_framework.response import Response

from . import odata
from .errors import bad_request, not_found

BASE = "identityGovernance/entitlementManagement"


def api_root(request):
    """The absolute URL of the API's root, ``https://host/v1.0``."""
    return request.build_absolute_uri("/v1.0").rstrip("/")


class GraphViewSet(viewsets.GenericViewSet):
    """Lists and entities in Graph's shape; subclasses add the methods they support."""

    context = ""  # entity set path after /v1.0/, e.g. "identityGovernance/.../catalogs"
    filter_fields = {}  # Graph property path -> model path, for $filter and $orderby
    default_order = ("pk",)
    lookup_value_regex = "[^/()]+"
    update_returns_entity = False  # Graph answers most PATCHes with 204 No Content

    # ---- reading ----------------------------------------------------------------------

    def visible(self):
        """The rows the caller may see: ``Model.objects.restrict(self.request.user, ...)``."""
        raise NotImplementedError

    def get_queryset(self):
        return self.visible()

    def options(self, request, *args, **kwargs):  # OPTIONS: DRF's metadata is not Graph's
        return Response(
            status=status.HTTP_204_NO_CONTENT, headers={"Allow": ", ".join(self.allowed_methods)}
        )

    def query_options(self, serializer_class=None):
        options = odata.parse_options(self.request.query_params)
        (serializer_class or self.get_serializer_class()).check_options(options)
        return options

    def get_object(self, queryset=None):
        """The row named in the URL among the visible ones; 404 (not 403) otherwise, so
        an id the caller may not see looks like one that does not exist."""
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        return self.find(queryset if queryset is not None else self.get_queryset(), value)

    @staticmethod
    def find(queryset, value, what=None):
        try:
            pk = uuid.UUID(str(value))
        except ValueError:
            raise not_found(
                f"No {what or queryset.model._meta.verbose_name} has the id '{str(value)[:64]}'."
            ) from None
        try:
            return queryset.get(pk=pk)
        except queryset.model.DoesNotExist:
            raise not_found(
                f"No {what or queryset.model._meta.verbose_name} has the id '{pk}'."
            ) from None

    def entity(
        self, instance, *, serializer_class=None, context=None, status_code=200, headers=None
    ):
        """One entity with ``@odata.context``; ``$select`` and ``$expand`` apply."""
        serializer_class = serializer_class or self.get_serializer_class()
        options = self.query_options(serializer_class)
        if options.expand:
            instance = self._reload(instance, serializer_class, options)
        data = serializer_class(
            instance, options=options, context=self.get_serializer_context()
        ).data
        body = {"@odata.context": self.context_url(context or self.context, entity=True), **data}
        return Response(body, status=status_code, headers=headers)

    def _reload(self, instance, serializer_class, options):
        selects, prefetches = serializer_class.related_lookups(options)
        queryset = type(instance)._base_manager.filter(pk=instance.pk)
        if selects:
            queryset = queryset.select_related(*selects)
        if prefetches:
            queryset = queryset.prefetch_related(*prefetches)
        return queryset.get()

    def context_url(self, context, *, entity=False):
        suffix = "/$entity" if entity else ""
        return f"{api_root(self.request)}/$metadata#{context}{suffix}"

    def collection(
        self,
        queryset,
        *,
        serializer_class=None,
        context=None,
        filter_fields=None,
        default_order=None,
    ):
        """A page of ``queryset`` in Graph's shape: ``{"value": [...], "@odata.nextLink"}``.

        ``$filter`` and ``$orderby`` may use ``filter_fields`` only; the page is found by
        keyset (``$skiptoken`` holds the last row's ordering values), so its cost does not
        grow with the rows before it, and no COUNT runs unless ``$count=true``.
        """
        serializer_class = serializer_class or self.get_serializer_class()
        fields = self.filter_fields if filter_fields is None else filter_fields
        options = self.query_options(serializer_class)
        if options.search:
            queryset = self.search(queryset, options.search)
        if options.filter:
            queryset = odata.apply_filter(queryset, options.filter, fields)
        ordering = odata.order_by(options, fields, default_order or self.default_order)
        total = queryset.count() if options.count else None
        fingerprint = hashlib.sha256(
            json.dumps([options.filter, options.search, ordering]).encode()
        ).hexdigest()[:16]
        if options.skiptoken:
            values = odata.read_skiptoken(options.skiptoken, fingerprint)
            queryset = queryset.filter(
                odata.after_q(ordering, values, _nullable(queryset.model, ordering))
            )
        size = options.top if options.top is not None else odata.DEFAULT_PAGE_SIZE
        selects, prefetches = serializer_class.related_lookups(options)
        if selects:
            queryset = queryset.select_related(*selects)
        if prefetches:
            queryset = queryset.prefetch_related(*prefetches)
        rows = list(queryset.order_by(*odata.order_expressions(ordering))[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        data = serializer_class(
            rows, many=True, options=options, context=self.get_serializer_context()
        ).data
        body = {"@odata.context": self.context_url(context or self.context)}
        if total is not None:
            body["@odata.count"] = total
        body["value"] = data
        if more and rows:
            last = rows[-1]
            paths = [name.lstrip("-") for name in ordering]
            values = list(type(last)._base_manager.filter(pk=last.pk).values_list(*paths).get())
            token = odata.make_skiptoken(_jsonable(values), fingerprint)
            body["@odata.nextLink"] = self._next_link(token)
        return Response(body)

    def search(self, queryset, text):
        raise bad_request("$search is not supported on this collection.")

    def _next_link(self, token):
        params = self.request.query_params.copy()
        params["$skiptoken"] = token
        path = self.request.build_absolute_uri(self.request.path)
        return f"{path}?{params.urlencode(safe='$')}"

    def list(self, request, *args, **kwargs):
        return self.collection(self.get_queryset())

    def retrieve(self, request, *args, **kwargs):
        return self.entity(self.get_object())

    # ---- writing ----------------------------------------------------------------------

    def body(self, serializer_class=None, *, partial=False, instance=None):
        """The request body, validated by ``serializer_class`` (400 in Graph's shape)."""
        if not isinstance(self.request.data, dict):
            raise bad_request("The request body must be a JSON object.")
        serializer = (serializer_class or self.get_serializer_class())(
            instance=instance,
            data=self.request.data,
            partial=partial,
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def created(self, instance, *, serializer_class=None, context=None, location=None):
        """201 with the new entity and its ``Location``."""
        location = location or f"{api_root(self.request)}/{context or self.context}/{instance.pk}"
        return self.entity(
            instance,
            serializer_class=serializer_class,
            context=context,
            status_code=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    def updated(self, instance, **kwargs):
        if self.update_returns_entity:
            return self.entity(instance, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def no_content():
        return Response(status=status.HTTP_204_NO_CONTENT)

    @property
    def actor(self):
        return self.request.user


def _nullable(model, ordering):
    """The ordering paths that can hold NULL (a nullable field, or one behind a nullable
    relation), which the keyset must treat apart."""
    nullable = set()
    for name in ordering:
        path = name.lstrip("-")
        current = model
        for part in path.split("__"):
            try:
                field = current._meta.pk if part == "pk" else current._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if field.null:
                nullable.add(path)
            if not field.is_relation or field.related_model is None:
                break
            current = field.related_model
    return frozenset(nullable)


def _jsonable(values):
    out = []
    for value in values:
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, models.Model):
            value = str(value.pk)
        out.append(value)
    return out
