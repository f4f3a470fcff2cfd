"""The base of every API serializer: Graph's camelCase properties, ``$select`` and
``$expand``.

A serializer names Graph's properties as its fields (``displayName =
serializers.CharField(source="display_name")``), declares what can be expanded in
``expandable`` and, for a type that has subtypes or is read through a base type, its
``odata_type``. The view reads the same declarations to prefetch what is expanded, so a
list is a fixed number of queries whatever its length.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Prefetch
from rest_framework import serializers

from .errors import bad_request


@dataclass(frozen=True)
class Expand:
    """A navigation property ``$expand`` can include.

    ``serializer`` renders it; ``source`` is the model attribute (a relation or a
    prefetched list); ``many`` for a collection; ``prefetch`` is what the list view hands
    to ``prefetch_related`` (a lookup or a ``Prefetch``), ``select`` what it hands to
    ``select_related`` for a single related row.
    """

    serializer: type
    source: str
    many: bool = False
    prefetch: str | Prefetch | None = None
    select: str | None = None


class StrictInput:
    """What Graph does with a body: a property the type does not have is a 400 (a typo is
    never silently ignored), and a text property given a number or a boolean is a 400 (not
    turned into text). Annotations (``@odata.type``, ``x@odata.bind``) are allowed."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for key, value in data.items():
                if not isinstance(key, str) or "@odata." in key or key.startswith("@"):
                    continue
                field = self.fields.get(key)
                if field is None:
                    errors[key] = [f"'{key}' is not a property of this object."]
                elif (
                    isinstance(field, serializers.CharField)
                    and not field.read_only
                    and isinstance(value, bool | int | float)
                ):
                    errors[key] = ["Must be a string."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class InputSerializer(StrictInput, serializers.Serializer):
    """A request body's part that is not an entity of its own."""


class GraphSerializer(StrictInput, serializers.Serializer):
    odata_type = None  # "#microsoft.graph.accessPackage" where Graph writes @odata.type
    expandable = {}  # Graph navigation property -> Expand

    def __init__(self, *args, **kwargs):
        options = kwargs.pop("options", None)
        super().__init__(*args, **kwargs)
        self.options = options

    @classmethod
    def check_options(cls, options):
        """Refuse $select and $expand of properties the type does not have."""
        if options is None:
            return
        known = set(cls().fields) | set(cls.expandable)
        for name in options.select:
            if name not in known:
                raise bad_request(f"Could not find a property named '{name}' to select.")
        for name, nested in options.expand.items():
            if name not in cls.expandable:
                raise bad_request(f"Could not find a navigation property named '{name}'.")
            cls.expandable[name].serializer.check_options(nested)

    @classmethod
    def related_lookups(cls, options, prefix=""):
        """(select_related, prefetch_related) lookups for what ``options`` expands."""
        selects, prefetches = [], []
        if options is None:
            return selects, prefetches
        for name, nested in options.expand.items():
            spec = cls.expandable[name]
            if spec.select:
                selects.append(prefix + spec.select)
                inner_selects, inner_prefetches = spec.serializer.related_lookups(
                    nested, prefix=f"{prefix}{spec.select}__"
                )
                selects += inner_selects
                prefetches += inner_prefetches
            elif spec.prefetch is not None:
                if isinstance(spec.prefetch, Prefetch):
                    prefetches.append(spec.prefetch)  # nested prefixes are not supported
                else:
                    prefetches.append(prefix + spec.prefetch)
                    inner_selects, inner_prefetches = spec.serializer.related_lookups(
                        nested, prefix=f"{prefix}{spec.prefetch}__"
                    )
                    prefetches += list(inner_selects) + inner_prefetches
        return selects, prefetches

    def to_representation(self, instance):
        data = super().to_representation(instance)
        options = self.options
        if self.odata_type:
            data = {"@odata.type": self.odata_type, **data}
        if options is None:
            return data
        for name, nested in options.expand.items():
            spec = self.expandable[name]
            value = instance
            for part in spec.source.split("."):
                value = getattr(value, part, None) if value is not None else None
            if spec.many and value is not None and hasattr(value, "all"):
                value = value.get_queryset()  # a prefetched list as it is (all() copies)
            if value is None:
                data[name] = [] if spec.many else None
            else:
                data[name] = self._expanded(name, spec, nested).to_representation(value)
        if options.select:
            keep = set(options.select) | set(options.expand) | {"id", "@odata.type"}
            data = {key: value for key, value in data.items() if key in keep}
        return data

    def _expanded(self, name, spec, nested):
        """One serializer per expanded property, reused for every row of a list: building
        one per row copied its fields each time, most of a long list's time."""
        cache = self.__dict__.setdefault("_expanded_serializers", {})
        if name not in cache:
            cache[name] = spec.serializer(many=spec.many, options=nested, context=self.context)
        return cache[name]

    @classmethod
    def many_init(cls, *args, **kwargs):
        options = kwargs.pop("options", None)
        kwargs["child"] = cls(options=options, context=kwargs.get("context"))
        return serializers.ListSerializer(*args, **kwargs)
