"""Graph's query options: ``$filter``, ``$select``, ``$expand``, ``$orderby``, ``$top``,
``$skiptoken`` and ``$count``.

``$filter`` is parsed by odata-query's grammar into an AST; the AST's property paths are
checked against the resource's list of filterable properties and renamed to the model's
field paths, and odata-query's Django visitor turns it into a ``Q``. A property not in the
list (a password, an internal field) is an ``InvalidFilter`` error, never a query.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.expressions import ExpressionList
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime, parse_duration
from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.django.django_q import AstToDjangoQVisitor
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeTransformer

from .errors import bad_request

DEFAULT_PAGE_SIZE = 100
_SKIPTOKEN_SALT = "api.graph.skiptoken"


def _invalid_filter(message):
    return bad_request(f"Invalid filter clause: {message}", code="InvalidFilter")


# --------------------------------------------------------------------------------------
# $filter
# --------------------------------------------------------------------------------------


def _path_of(node):
    """``accessPackage/id`` for an Attribute chain, ``displayName`` for an Identifier."""
    if isinstance(node, ast.Identifier):
        return node.name
    if isinstance(node, ast.Attribute):
        owner = _path_of(node.owner)
        return None if owner is None else f"{owner}/{node.attr}"
    return None


def _orm_node(orm_path):
    """An AST node naming a model field path (``access_package__id``) for the visitor."""
    parts = orm_path.split("__")
    node = ast.Identifier(parts[0])
    for part in parts[1:]:
        node = ast.Attribute(node, part)
    return node


class _Renamer(NodeTransformer):
    """Replaces Graph property paths by model paths; refuses any path not in ``fields``.

    Inside ``collection/any(x: x/prop eq ...)`` the lambda's paths are checked as
    ``collection/prop`` and renamed relative to the collection's model, as the visitor runs
    the lambda in that model's context.
    """

    def __init__(self, fields, prefix=""):
        self.fields = fields
        self.prefix = prefix

    def _rename(self, node):
        path = _path_of(node)
        graph_path = f"{self.prefix}{path}"
        if path is None or graph_path not in self.fields:
            raise _invalid_filter(f"'{path or node}' is not a property that can be filtered on.")
        orm = self.fields[graph_path]
        if self.prefix:  # relative to the collection's model
            orm = orm.split("__", 1)[1] if "__" in orm else orm
        return _orm_node(orm)

    def visit_Identifier(self, node):
        return self._rename(node)

    def visit_Attribute(self, node):
        return self._rename(node)

    def visit_CollectionLambda(self, node):
        collection = _path_of(node.owner)
        if collection is None or f"{self.prefix}{collection}" not in self.fields:
            raise _invalid_filter(f"'{collection}' is not a collection that can be filtered on.")
        owner = _orm_node(self.fields[f"{self.prefix}{collection}"])
        lambda_ = node.lambda_
        if lambda_ is not None:
            variable = lambda_.identifier.name
            inner = _LambdaRenamer(self.fields, f"{self.prefix}{collection}/", variable)
            lambda_ = ast.Lambda(lambda_.identifier, inner.visit(lambda_.expression))
        return ast.CollectionLambda(owner, node.operator, lambda_)

    def visit_Call(self, node):
        return ast.Call(node.func, [self.visit(arg) for arg in node.args])


class _LambdaRenamer(_Renamer):
    """Paths inside a lambda: ``x/prop`` is ``collection/prop``; ``x`` stays the variable."""

    def __init__(self, fields, prefix, variable):
        super().__init__(fields, prefix)
        self.variable = variable

    def _rename(self, node):
        path = _path_of(node)
        if path is None or not path.startswith(f"{self.variable}/"):
            raise _invalid_filter(f"'{path}' must start with the lambda variable {self.variable}.")
        graph_path = f"{self.prefix}{path.split('/', 1)[1]}"
        if graph_path not in self.fields:
            raise _invalid_filter(f"'{graph_path}' is not a property that can be filtered on.")
        collection_orm = self.fields[self.prefix.rstrip("/")]
        orm = self.fields[graph_path]
        if orm.startswith(f"{collection_orm}__"):
            orm = orm[len(collection_orm) + 2 :]
        return _orm_node(f"{self.variable}__{orm}")

    def visit_Identifier(self, node):
        if node.name == self.variable:
            return node
        return self._rename(node)


class GraphLexer(ODataLexer):
    """odata-query's lexer, with its keywords ending where a word ends.

    Its own matches ``true``, ``false``, ``null``, ``any`` and ``all`` at the start of any
    word, so a property such as ``allowedTargetScope`` or ``anyone`` could not be named.
    Here a literal keyword must not run on into a name, and ``any``/``all`` must open a
    lambda's parenthesis.
    """

    tokens = ODataLexer.tokens
    literals = ODataLexer.literals

    @_(r"(?:true|false)(?![\w.])")  # noqa: F821 (sly's decorator, defined by its metaclass)
    def BOOLEAN(self, t):  # noqa: N802
        t.value = ast.Boolean(t.value)
        return t

    @_(r"null(?![\w.])")  # noqa: F821
    def NULL(self, t):  # noqa: N802
        t.value = ast.Null()
        return t

    @_(r"any(?=\s*\()")  # noqa: F821
    def ANY(self, t):  # noqa: N802
        t.value = ast.Any()
        return t

    @_(r"all(?=\s*\()")  # noqa: F821
    def ALL(self, t):  # noqa: N802
        t.value = ast.All()
        return t


class _Visitor(AstToDjangoQVisitor):
    """odata-query's visitor, with every literal read as a value of the property it is
    compared with: a string compared to a UUID field is a UUID (SQLite keeps UUIDs as 32 hex
    digits), a date-time string a date-time; a literal of another type (``displayName eq
    5``, ``createdDateTime gt 'abc'``) is an InvalidFilter error, not a database error."""

    def visit_Compare(self, node):
        lookup = super().visit_Compare(node)
        field = _field_of(self.root_model, getattr(lookup, "lhs", None))
        if field is None:
            return lookup
        if isinstance(lookup.rhs, ExpressionList):  # in (...)
            lookup.rhs.set_source_expressions(
                [_typed(value, field) for value in lookup.rhs.get_source_expressions()]
            )
        else:
            lookup.rhs = _typed(lookup.rhs, field)
        return lookup


_TEXT = (models.CharField, models.TextField)
_NUMBER = (models.IntegerField, models.FloatField, models.DecimalField)


def _typed(value, field):
    if not isinstance(value, Value) or value.value is None:
        return value
    raw = value.value
    name = field.name
    if isinstance(field, models.BooleanField):
        ok = isinstance(raw, bool)
    elif isinstance(field, _NUMBER):
        ok = isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)
    elif isinstance(field, _TEXT):
        ok = isinstance(raw, str)
    elif isinstance(field, models.DateTimeField):
        if isinstance(raw, str):
            raw = parse_datetime(raw)
        ok = isinstance(raw, datetime)
        if ok and timezone.is_naive(raw):
            raw = timezone.make_aware(raw, UTC)
    elif isinstance(field, models.DateField):
        if isinstance(raw, str):
            raw = parse_date(raw)
        ok = isinstance(raw, date)
    elif isinstance(field, models.DurationField):
        if isinstance(raw, str):
            raw = parse_duration(raw)
        ok = isinstance(raw, timedelta)
    elif isinstance(field, models.UUIDField):
        try:
            raw = uuid.UUID(str(raw))
            ok = True
        except ValueError:
            ok = False
    else:
        return value
    if not ok:
        raise _invalid_filter(f"{value.value!r} is not a value that {name} can be compared with.")
    return Value(raw, output_field=field)


def _field_of(model, lhs):
    """The model field ``lhs`` (an F over a path) names; a relation's target pk for a
    foreign key named by itself."""
    if not isinstance(lhs, F):
        return None
    field = None
    for part in lhs.name.split("__"):
        try:
            field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        except (FieldDoesNotExist, AttributeError):
            return None
        if field.is_relation and field.related_model is not None:
            model = field.related_model
            if field.many_to_one or field.one_to_one:
                field = model._meta.pk
    return field


def filter_q(model, expression, fields):
    """The ``Q`` (and annotations) for a Graph ``$filter`` over ``model``.

    ``fields`` maps each filterable Graph property path (``displayName``,
    ``accessPackage/id``; a collection for ``any``: ``resourceRoleScopes``) to its model
    path (``display_name``, ``access_package__id``, ``resource_role_scopes``).
    """
    try:
        tree = ODataParser().parse(GraphLexer().tokenize(expression))
    except odata_errors.ODataException as exc:
        raise _invalid_filter(_syntax_error(exc, expression)) from None
    except Exception:  # the grammar's lexer raises bare errors on stray characters
        raise _invalid_filter("the expression could not be read.") from None
    if tree is None:
        raise _invalid_filter("the expression is empty.")
    tree = _Renamer(fields).visit(tree)
    visitor = _Visitor(model)
    try:
        condition = visitor.visit(tree)
    except odata_errors.ODataException as exc:
        raise _invalid_filter(_reason(exc)) from None
    except (NotImplementedError, TypeError, ValueError, AttributeError) as exc:
        raise _invalid_filter(str(exc) or "the expression is not supported.") from None
    if not isinstance(condition, Q):
        raise _invalid_filter("the expression is not a condition.")
    _check_bare_properties(model, condition)
    return condition, visitor.queryset_annotations


def _check_bare_properties(model, condition):
    """A property alone (``$filter=isHidden``) is a condition only when it is a boolean,
    and then means ``isHidden eq true``."""
    for index, child in enumerate(condition.children):
        if isinstance(child, Q):
            _check_bare_properties(model, child)
        elif isinstance(child, F):
            field = _field_of(model, child)
            if not isinstance(field, models.BooleanField):
                raise _invalid_filter(f"'{child.name}' is not a condition: compare it to a value.")
            condition.children[index] = (child.name, True)


def _syntax_error(exc, expression):
    """Where the expression stops making sense, as Graph says it: a position, not tokens."""
    token = getattr(exc, "token", None)
    if token is None:
        return f"the expression ends too early: '{expression[:200]}'."
    index = getattr(token, "index", None)
    if index is None:
        return f"syntax error in '{expression[:200]}'."
    return f"syntax error at position {index} in '{expression[:200]}'."


def _reason(exc):
    text = str(exc) or type(exc).__name__
    return text[:200]


def apply_filter(queryset, expression, fields):
    condition, annotations = filter_q(queryset.model, expression, fields)
    if annotations:
        queryset = queryset.annotate(**annotations)
    return queryset.filter(condition)


# --------------------------------------------------------------------------------------
# $select, $expand, $orderby, $top, $skiptoken, $count
# --------------------------------------------------------------------------------------


@dataclass
class QueryOptions:
    """The query options of one request, read and checked."""

    filter: str = ""
    select: list = field(default_factory=list)
    expand: dict = field(default_factory=dict)  # name -> QueryOptions of its own
    orderby: list = field(default_factory=list)  # [(graph path, descending)]
    top: int | None = None
    skiptoken: str = ""
    count: bool = False
    search: str = ""


def _split_top_level(text, separator=","):
    """Splits ``a,b($select=x,y),c`` at the separators outside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise bad_request("Unbalanced parentheses in a query option.")
        if char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth:
        raise bad_request("Unbalanced parentheses in a query option.")
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _names(value, option):
    names = _split_top_level(value)
    for name in names:
        if not all(part.isidentifier() for part in name.split("/")):
            raise bad_request(f"'{name}' in {option} is not a property name.")
    return names


def _parse_expand(value):
    expand = {}
    for item in _split_top_level(value):
        name, _, rest = item.partition("(")
        name = name.strip()
        if not name.isidentifier():
            raise bad_request(f"'{name}' in $expand is not a property name.")
        nested = QueryOptions()
        if rest:
            if not rest.endswith(")"):
                raise bad_request(f"Unbalanced parentheses in $expand of '{name}'.")
            for option in _split_top_level(rest[:-1], ";"):
                key, _, option_value = option.partition("=")
                key = key.strip()
                if key == "$select":
                    nested.select = _names(option_value, "$select")
                elif key == "$expand":
                    nested.expand = _parse_expand(option_value)
                else:
                    raise bad_request(f"{key} is not supported inside $expand.")
        expand[name] = nested
    return expand


def _parse_orderby(value):
    orderby = []
    for item in _split_top_level(value):
        words = item.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"'{item}' in $orderby is not 'property [asc|desc]'.")
        if not all(part.isidentifier() for part in words[0].split("/")):
            raise bad_request(f"'{words[0]}' in $orderby is not a property name.")
        orderby.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return orderby


def _parse_top(value):
    try:
        top = int(value)
    except ValueError:
        raise bad_request("$top must be a whole number.") from None
    if top < 0:
        raise bad_request("$top must not be negative.")
    return min(top, settings.API_MAX_PAGE_SIZE)


_KNOWN = {
    "$filter",
    "$select",
    "$expand",
    "$orderby",
    "$top",
    "$skiptoken",
    "$count",
    "$search",
    "$format",
    "$skip",
}


def parse_options(params):
    """QueryOptions from a request's query parameters (``request.query_params``)."""
    options = QueryOptions()
    for key in params:
        if key.startswith("$") and key not in _KNOWN:
            raise bad_request(f"Query option '{key}' is not supported.")
    if "$skip" in params:
        raise bad_request("$skip is not supported; follow @odata.nextLink to page.")
    if params.get("$format", "json") not in ("json", "application/json"):
        raise bad_request("Only $format=json is supported.")
    options.filter = params.get("$filter", "").strip()
    if "$select" in params:
        options.select = _names(params["$select"], "$select")
    if "$expand" in params:
        options.expand = _parse_expand(params["$expand"])
    if "$orderby" in params:
        options.orderby = _parse_orderby(params["$orderby"])
    if "$top" in params:
        options.top = _parse_top(params["$top"])
    options.skiptoken = params.get("$skiptoken", "")
    count = params.get("$count", "false")
    if count not in ("true", "false"):
        raise bad_request("$count must be true or false.")
    options.count = count == "true"
    options.search = params.get("$search", "").strip()
    return options


def order_by(options, fields, default):
    """Model ordering for ``$orderby`` (checked against ``fields``), the pk last."""
    if not options.orderby:
        ordering = list(default)
    else:
        ordering = []
        for path, descending in options.orderby:
            if path not in fields:
                raise bad_request(f"'{path}' is not a property that can be sorted on.")
            ordering.append(("-" if descending else "") + fields[path])
    if not any(name.lstrip("-") in ("pk", "id") for name in ordering):
        ordering.append("pk")
    return ordering


# Paging: $skiptoken is opaque to clients (signed, so it cannot be forged into another
# query): it holds the ordering values of the last row shown (keyset) and the filter's
# fingerprint, so the next page starts right after it whatever was added meanwhile.


def make_skiptoken(values, fingerprint):
    return signing.dumps({"k": values, "f": fingerprint}, salt=_SKIPTOKEN_SALT, compress=True)


def read_skiptoken(token, fingerprint):
    try:
        data = signing.loads(token, salt=_SKIPTOKEN_SALT)
    except signing.BadSignature:
        raise bad_request("$skiptoken is not valid; follow @odata.nextLink.") from None
    if (
        not isinstance(data, dict)
        or data.get("f") != fingerprint
        or not isinstance(data.get("k"), list)
    ):
        raise bad_request("$skiptoken does not belong to this query.")
    return data["k"]


def order_expressions(ordering):
    """``ordering`` as expressions with NULLs last ascending and first descending on every
    database (PostgreSQL's default), so that the keyset below holds on SQLite too."""
    expressions = []
    for name in ordering:
        path = name.lstrip("-")
        if name.startswith("-"):
            expressions.append(F(path).desc(nulls_first=True))
        else:
            expressions.append(F(path).asc(nulls_last=True))
    return expressions


def after_q(ordering, values, nullable=frozenset()):
    """Rows strictly after ``values`` in ``ordering`` (see order_expressions for NULLs):
    (a > x) or (a = x and b > y) ..."""
    if len(values) != len(ordering):
        raise bad_request("$skiptoken does not belong to this query.")
    condition = Q(pk__in=[])
    equal = Q()
    for name, value in zip(ordering, values, strict=True):
        path = name.lstrip("-")
        descending = name.startswith("-")
        if value is None:
            # NULLs come last ascending (nothing but NULLs follows) and first descending
            # (every non-NULL follows).
            if descending and path in nullable:
                condition |= equal & Q(**{f"{path}__isnull": False})
            equal &= Q(**{f"{path}__isnull": True})
        else:
            step = Q(**{f"{path}__{'lt' if descending else 'gt'}": value})
            if not descending and path in nullable:
                step |= Q(**{f"{path}__isnull": True})
            condition |= equal & step
            equal &= Q(**{path: value})
    return condition
