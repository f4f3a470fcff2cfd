"""SCIM filters (RFC 7644 §3.4.2.2) as Django queries over a client's SCIM links.

scim2-models parses the filter (``SearchRequest.filter.ast``); this module walks that tree
and turns each comparison into a ``Q`` on the column the attribute lives in: the person's
or the group's row, the link's userName, externalId and SCIM id, or the stored document
for attributes the directory has no column for. Strings compare without case (every
attribute the schemas filter on here has ``caseExact`` false, except ids).
"""

import uuid
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from scim2_models import InvalidFilterException, Path, SCIMException
from scim2_models.path import (
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
)
from scim2_models.path.visitor import FilterVisitor

from directory.models import GroupMembership

from .models import ScimUser
from .provider import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

ID, TEXT, BOOL, DATETIME, MEMBER = "id", "text", "bool", "datetime", "member"

# (schema, attribute, sub-attribute) -> (lookup on the link, kind of value)
COMMON = {
    ("id", None): ("scim_id", ID),
    ("externalid", None): ("external_id", TEXT),
    ("meta", "created"): ("created", DATETIME),
    ("meta", "lastmodified"): ("modified", DATETIME),
}
USER_ATTRIBUTES = {
    USER_SCHEMA: {
        ("username", None): ("user_name", TEXT),
        ("displayname", None): ("user__display_name", TEXT),
        ("title", None): ("user__job_title", TEXT),
        ("active", None): ("user__is_active", BOOL),
        ("emails", None): ("user__email", TEXT),
        ("emails", "value"): ("user__email", TEXT),
        ("name", "formatted"): ("document__name__formatted", TEXT),
        ("name", "givenname"): ("document__name__givenName", TEXT),
        ("name", "familyname"): ("document__name__familyName", TEXT),
        ("nickname", None): ("document__nickName", TEXT),
        ("usertype", None): ("document__userType", TEXT),
        ("preferredlanguage", None): ("document__preferredLanguage", TEXT),
        ("locale", None): ("document__locale", TEXT),
    },
    ENTERPRISE_SCHEMA: {
        ("employeenumber", None): ("user__employee_id", TEXT),
        ("department", None): ("user__department", TEXT),
        ("organization", None): ("user__company_name", TEXT),
        ("costcenter", None): (f"document__{ENTERPRISE_SCHEMA}__costCenter", TEXT),
        ("division", None): (f"document__{ENTERPRISE_SCHEMA}__division", TEXT),
        ("manager", None): ("user__manager__scim_links__scim_id", ID),
        ("manager", "value"): ("user__manager__scim_links__scim_id", ID),
    },
}
GROUP_ATTRIBUTES = {
    GROUP_SCHEMA: {
        ("displayname", None): ("group__display_name", TEXT),
        ("members", None): ("members", MEMBER),
        ("members", "value"): ("members", MEMBER),
    },
}
TEXT_LOOKUPS = {
    CompareOperator.eq: "iexact",
    CompareOperator.co: "icontains",
    CompareOperator.sw: "istartswith",
    CompareOperator.ew: "iendswith",
    CompareOperator.gt: "gt",
    CompareOperator.ge: "gte",
    CompareOperator.lt: "lt",
    CompareOperator.le: "lte",
}


class FilterToQ(FilterVisitor):
    """A filter over one resource type as a ``Q`` on its link model (ScimUser, ScimGroup)."""

    def __init__(self, *, model, attributes, core_schema, client):
        self.model = model
        self.attributes = attributes
        self.core_schema = core_schema
        self.client = client

    def lookup(self, attr_path, sub_attr=None):
        """The (lookup, kind) an attribute path names, or None when the type has none."""
        name = attr_path.attr.lower()
        sub = (sub_attr or attr_path.sub_attr or "").lower() or None
        schema = attr_path.uri
        if schema is None and (name, sub) in COMMON:
            return COMMON[(name, sub)]
        # Without a URN only the core schema's attributes are known: an extension's needs it.
        urn = (schema or self.core_schema).lower()
        for known, table in self.attributes.items():
            if known.lower() == urn and (name, sub) in table:
                return table[(name, sub)]
        return None

    def _unsupported(self, attr_path):
        raise InvalidFilterException(detail=f"Filtering on {attr_path} is not supported.")

    def visit_logical_expr(self, node):
        terms = [self.visit(term) for term in node.terms]
        combined = terms[0]
        for term in terms[1:]:
            combined = combined & term if node.op == LogicalOperator.and_ else combined | term
        return combined

    def visit_not(self, node):
        return ~self.visit(node.expr)

    def visit_present(self, node, sub_attr=None):
        found = self.lookup(node.attr_path, sub_attr)
        if found is None:
            return self._none_or_unsupported(node.attr_path)
        field, kind = found
        if kind == MEMBER:
            return Q(Exists(self._members()))
        if field.startswith("user__manager__scim_links"):
            return Q(Exists(self._manager_link()))
        if kind in (BOOL, DATETIME, ID):
            return Q(**{f"{field}__isnull": False})
        return ~Q(**{field: ""}) & Q(**{f"{field}__isnull": False})

    def visit_comparison(self, node, sub_attr=None):
        found = self.lookup(node.attr_path, sub_attr)
        if found is None:
            return self._none_or_unsupported(node.attr_path)
        field, kind = found
        op, value = node.op, node.value
        if op == CompareOperator.ne:
            return ~self.visit_comparison(
                type(node)(attr_path=node.attr_path, op=CompareOperator.eq, value=value),
                sub_attr,
            )
        if kind == BOOL:
            if op != CompareOperator.eq or not isinstance(value, bool):
                raise InvalidFilterException(
                    detail=f"{node.attr_path} is true or false, compared with eq or ne."
                )
            return Q(**{field: value})
        if kind == DATETIME:
            return Q(**{f"{field}__{TEXT_LOOKUPS.get(op, 'exact')}": _datetime(node)})
        if not isinstance(value, str):
            raise InvalidFilterException(detail=f"{node.attr_path} is compared with a string.")
        if kind == ID:
            if op != CompareOperator.eq:
                raise InvalidFilterException(
                    detail=f"An id is compared with eq or ne, not {op.value}."
                )
            if field.startswith("user__manager__scim_links"):
                return Q(Exists(self._manager_link().filter(scim_id=_uuid_or_none(value))))
            return Q(**{field: _uuid_or_none(value)})
        if kind == MEMBER:
            if op != CompareOperator.eq:
                raise InvalidFilterException(detail="A member is compared with eq or ne.")
            return Q(Exists(self._members().filter(user__scim_links__scim_id=_uuid_or_none(value))))
        if op == CompareOperator.eq and field == "user_name":
            # lower(userName) = lower(value): the unique index on lower(user_name) answers it.
            return Q(Exact(Lower("user_name"), value.lower()))
        return Q(**{f"{field}__{TEXT_LOOKUPS[op]}": value})

    def visit_value_path(self, node):
        """``emails[value eq "x"]``, ``members[value eq "id"]``: only the value sub-attribute
        of a multi-valued attribute is kept in a column."""
        return self._within(node.val_filter, node.attr_path)

    def _within(self, inner, outer):
        if isinstance(inner, LogicalExpr):
            terms = [self._within(term, outer) for term in inner.terms]
            combined = terms[0]
            for term in terms[1:]:
                combined = combined & term if inner.op == LogicalOperator.and_ else combined | term
            return combined
        if isinstance(inner, Not):
            return ~self._within(inner.expr, outer)
        if isinstance(inner, Comparison | Present) and inner.attr_path.attr.lower() == "value":
            if isinstance(inner, Present):
                return self.visit_present(type(inner)(attr_path=outer), "value")
            return self.visit_comparison(
                type(inner)(attr_path=outer, op=inner.op, value=inner.value), "value"
            )
        raise InvalidFilterException(detail=f"Within {outer}[...], only value can be filtered on.")

    def _none_or_unsupported(self, attr_path):
        # RFC 7644 §3.4.2.1: an attribute the resource type does not have matches nothing.
        if _has_attribute(self.model, attr_path):
            self._unsupported(attr_path)
        return Q(pk__in=[])

    def _members(self):
        return GroupMembership.objects.filter(
            group=OuterRef("group"),
            role=GroupMembership.Role.MEMBER,
            user__scim_links__client=self.client,
            user__scim_links__deleted_at__isnull=True,
        )

    def _manager_link(self):
        return ScimUser.objects.filter(
            user=OuterRef("user__manager"), client=self.client, deleted_at__isnull=True
        )


def _has_attribute(model, attr_path):
    """Whether the resource model declares the attribute (RFC 7644 §3.4.2.1: one it does
    not declare matches nothing; one it declares that no column holds is refused)."""
    try:
        return Path[model](str(attr_path)).resolve() is not None
    except (ValueError, TypeError, KeyError, SCIMException):
        return False


def _uuid_or_none(value):
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def _datetime(node):
    value = node.value
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilterException(
            detail=f"{node.attr_path} is compared with a date and time (RFC 3339)."
        ) from None


def filter_q(scim_filter, *, model, attributes, core_schema, client):
    """The ``Q`` a parsed SCIM filter stands for over ``model``'s resources (no filter:
    every row)."""
    if scim_filter is None:
        return Q()
    visitor = FilterToQ(model=model, attributes=attributes, core_schema=core_schema, client=client)
    return visitor.visit(scim_filter.ast)
