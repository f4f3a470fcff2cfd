"""What several resources share: Graph's date-time format and audited configuration writes."""

from datetime import UTC

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from rest_framework import serializers

from entitlements import configuration, permissions
from entitlements.models import Channel

from ..graph.errors import conflict, forbidden


class GraphDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with a ``Z``, as Graph writes ``DateTimeOffset`` values."""

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "%Y-%m-%dT%H:%M:%SZ")
        kwargs.setdefault("default_timezone", None)
        super().__init__(**kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def require(user, action, obj=None, *, model=None, what="this"):
    """403 unless ``user`` may ``action`` ``obj``, by the admin's own rule (permissions.can)."""
    if not permissions.can(user, action, obj, model=model):
        raise forbidden(f"The caller may not {action} {what}.")


def graph_clean(obj, serializer_class=None):
    """``obj.full_clean()``, its errors named by Graph's properties (``displayName``, not
    ``display_name``) where ``serializer_class`` declares them; a 400 with the message."""
    try:
        obj.full_clean()
    except ValidationError as exc:
        if serializer_class is None or not hasattr(exc, "error_dict"):
            raise
        names = {
            field.source: name
            for name, field in serializer_class().fields.items()
            if field.source and field.source != "*"
        }
        raise ValidationError(
            {names.get(key, key): value for key, value in exc.error_dict.items()}
        ) from None


def save_config(user, obj, *, m2m=None, serializer_class=None):
    """Validate and save a configuration row through the audited service."""
    graph_clean(obj, serializer_class)  # a ValidationError is a 400 with the field's message
    try:
        return configuration.config_save(actor=user, obj=obj, m2m=m2m, channel=Channel.API)
    except IntegrityError as exc:
        raise conflict("The change conflicts with an existing object.") from exc


def delete_config(user, obj):
    try:
        configuration.config_delete(actor=user, objs=[obj], channel=Channel.API)
    except ProtectedError:
        raise conflict(f"{obj} is still used by other objects; remove those first.") from None
