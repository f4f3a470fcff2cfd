"""Membership rules over user attributes, in the supported subset of Entra's rule syntax.

    user.department -eq "Sales" -and -not (user.jobTitle -startsWith "Intern")

A rule is parsed with a grammar (lark, LALR) into a small tree of frozen dataclasses
(``Condition``, ``Not``, ``And``, ``Or``). The tree answers three ways, which always agree:
``matches(user)`` in Python, ``to_q()`` as a condition over ``User`` in SQL, and ``str()`` as
the rule's canonical text (``parse_rule(str(rule)) == rule``).

Operators and attribute names are case-insensitive, as in Entra, and so are comparisons of
text, for the letters A to Z: other characters (é, ß, ...) compare exactly. That is the one
case-insensitivity that Python, PostgreSQL (whatever its collation) and SQLite compute alike.
Precedence, highest first: comparisons, ``-not``, ``-and``, ``-or``.
"""

from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import and_, or_

from django.db.models import F, Func, Q, TextField
from django.db.models.lookups import Contains, Exact, In, StartsWith
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

MAX_RULE_LENGTH = 4000
# How deeply -not, -and and -or may nest: far beyond any rule a person writes, and far
# below what reading, printing or querying the tree (all recursive) can follow.
MAX_RULE_DEPTH = 50

# Entra's attribute name -> (User field, kind). Only attributes the directory keeps.
ATTRIBUTES = {
    "accountEnabled": ("is_active", bool),
    "companyName": ("company_name", str),
    "department": ("department", str),
    "displayName": ("display_name", str),
    "employeeId": ("employee_id", str),
    "jobTitle": ("job_title", str),
    "mail": ("email", str),
    "userType": ("user_type", str),
}
_ATTRIBUTE_BY_LOWER = {name.lower(): name for name in ATTRIBUTES}

STRING_OPERATORS = (
    "-eq",
    "-ne",
    "-startsWith",
    "-notStartsWith",
    "-contains",
    "-notContains",
    "-in",
    "-notIn",
)
BOOL_OPERATORS = ("-eq", "-ne")
_OPERATOR_BY_LOWER = {op.lower(): op for op in STRING_OPERATORS}
_NEGATED = {"-ne": "-eq", "-notStartsWith": "-startsWith", "-notContains": "-contains"}
_NEGATED.update({"-notIn": "-in"})

# An API application's service principal is a directory user too, addressed
# <client id>@applications.invalid (api.tokens; a reserved domain no person's mail can be
# in). A rule chooses among people: selecting() and includes() leave principals out.
SERVICE_PRINCIPAL_DOMAIN = "applications.invalid"
_PRINCIPAL_SUFFIX = "@" + SERVICE_PRINCIPAL_DOMAIN


def is_service_principal(user):
    """Whether ``user`` is an API application's service principal, not a person."""
    return ascii_lower(user.email or "").endswith(_PRINCIPAL_SUFFIX)


def selecting(rule):
    """The people ``rule`` matches, as a Q over User (service principals never)."""
    return rule.to_q() & ~Q(email__iendswith=_PRINCIPAL_SUFFIX)


def includes(rule, user):
    """Whether ``rule`` matches ``user``, a person (``selecting`` in Python)."""
    return rule.matches(user) and not is_service_principal(user)


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ASCII_LOWER = str.maketrans(_UPPER, _LOWER)


def ascii_lower(text):
    """``text`` with A-Z made lower case and every other character left as it is."""
    return text.translate(_ASCII_LOWER)


class AsciiLower(Func):
    """SQL: the text with A-Z made lower case, nothing else (``ascii_lower`` in SQL).

    SQLite's lower() folds only ASCII; PostgreSQL's follows the collation, so it is told
    exactly which letters to change instead."""

    function = "LOWER"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            function="TRANSLATE",
            template=f"%(function)s(%(expressions)s, '{_UPPER}', '{_LOWER}')",
            **extra,
        )


class RuleSyntaxError(ValueError):
    """A rule that cannot be read: ``message`` says why, ``position`` (0-based offset),
    ``line`` and ``column`` (1-based) say where, ``str()`` shows it under a caret."""

    def __init__(self, message, *, text, position):
        self.message = message
        self.text = text
        self.position = max(0, min(position, len(text)))
        before = text[: self.position]
        self.line = before.count("\n") + 1
        self.column = self.position - (before.rfind("\n") + 1) + 1
        super().__init__(self.pointed())

    def pointed(self):
        """The message, the line of the rule it is about, and a caret under the place."""
        lines = self.text.split("\n")
        source = lines[self.line - 1] if self.line <= len(lines) else ""
        where = _("line %(line)s, column %(column)s") % {"line": self.line, "column": self.column}
        return f"{self.message} ({where})\n{source}\n{' ' * (self.column - 1)}^"


# --------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------


def _quote(value):
    # Entra escapes a double quote inside a value with a backtick; so is the backtick itself.
    return '"' + value.replace("`", "``").replace('"', '`"') + '"'


@dataclass(frozen=True)
class Condition:
    """``user.<attribute> <operator> <value>``; value is a str, a bool or a tuple of str."""

    attribute: str
    operator: str
    value: object

    def __str__(self):
        if isinstance(self.value, bool):
            value = "true" if self.value else "false"
        elif isinstance(self.value, tuple):
            value = "[" + ", ".join(_quote(v) for v in self.value) + "]"
        else:
            value = _quote(self.value)
        return f"user.{self.attribute} {self.operator} {value}"

    @property
    def field(self):
        return ATTRIBUTES[self.attribute][0]

    def _positive(self):
        """(the operator without its negation, whether it was negated)."""
        if self.operator in _NEGATED:
            return _NEGATED[self.operator], True
        return self.operator, False

    def matches(self, user):
        actual = getattr(user, self.field)
        operator, negated = self._positive()
        if isinstance(self.value, bool):
            result = bool(actual) == self.value
        else:
            actual = ascii_lower(actual or "")
            if operator == "-eq":
                result = actual == ascii_lower(self.value)
            elif operator == "-startsWith":
                result = actual.startswith(ascii_lower(self.value))
            elif operator == "-contains":
                result = ascii_lower(self.value) in actual
            else:  # -in
                result = actual in {ascii_lower(v) for v in self.value}
        return result != negated

    def to_q(self):
        operator, negated = self._positive()
        if isinstance(self.value, bool):
            q = Q(**{self.field: self.value})
        else:
            lhs = AsciiLower(F(self.field))
            if operator == "-eq":
                q = Q(Exact(lhs, ascii_lower(self.value)))
            elif operator == "-startsWith":
                q = Q(StartsWith(lhs, ascii_lower(self.value)))
            elif operator == "-contains":
                q = Q(Contains(lhs, ascii_lower(self.value)))
            else:
                q = Q(In(lhs, sorted({ascii_lower(v) for v in self.value})))
        return ~q if negated else q


@dataclass(frozen=True)
class Not:
    """``-not (<rule>)``."""

    operand: object

    def __str__(self):
        return f"-not ({self.operand})"

    def matches(self, user):
        return not self.operand.matches(user)

    def to_q(self):
        return ~self.operand.to_q()


@dataclass(frozen=True)
class And:
    """``<rule> -and <rule> ...``: two or more operands, none of them an And."""

    operands: tuple

    def __str__(self):
        return " -and ".join(f"({o})" if isinstance(o, Or) else str(o) for o in self.operands)

    def matches(self, user):
        return all(o.matches(user) for o in self.operands)

    def to_q(self):
        return reduce(and_, (o.to_q() for o in self.operands))


@dataclass(frozen=True)
class Or:
    """``<rule> -or <rule> ...``: two or more operands, none of them an Or."""

    operands: tuple

    def __str__(self):
        return " -or ".join(str(o) for o in self.operands)

    def matches(self, user):
        return any(o.matches(user) for o in self.operands)

    def to_q(self):
        return reduce(or_, (o.to_q() for o in self.operands))


def all_of(*operands):
    """And of ``operands``, flattened: ``all_of(a, all_of(b, c)) == all_of(a, b, c)``."""
    return _joined(And, operands)


def any_of(*operands):
    """Or of ``operands``, flattened."""
    return _joined(Or, operands)


def _joined(kind, operands):
    flat = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else [operand])
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


# --------------------------------------------------------------------------------------
# The grammar
# --------------------------------------------------------------------------------------

GRAMMAR = r"""
?start: disjunction
?disjunction: conjunction (OR conjunction)*
?conjunction: negation (AND negation)*
?negation: NOT negation -> negated
         | "(" disjunction ")"
         | comparison
comparison: ATTRIBUTE OPERATOR value
?value: STRING -> text
      | BOOLEAN -> boolean
      | "[" STRING ("," STRING)* "]" -> texts

OR: /-or\b/i
AND: /-and\b/i
NOT: /-not\b/i
OPERATOR: /-[A-Za-z]+/
ATTRIBUTE: /user\.[A-Za-z_][A-Za-z0-9_]*/i
BOOLEAN: /(true|false)\b/i
STRING: /"(?:[^"`]|`[\s\S])*"/

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False)

_EXPECTED = {
    "ATTRIBUTE": gettext_lazy("an attribute such as user.department"),
    "OPERATOR": gettext_lazy("an operator such as -eq"),
    "STRING": gettext_lazy('a value in double quotes such as "Sales"'),
    "BOOLEAN": gettext_lazy("true or false"),
    "LSQB": gettext_lazy('a list such as ["Sales", "Marketing"]'),
    "LPAR": gettext_lazy("an opening parenthesis"),
    "RPAR": gettext_lazy("a closing parenthesis"),
    "AND": "-and",
    "OR": "-or",
    "NOT": "-not",
    "COMMA": gettext_lazy("a comma"),
    "RSQB": gettext_lazy("a closing bracket"),
    "$END": gettext_lazy("the end of the rule"),
}


class _Semantic(Exception):
    def __init__(self, message, token):
        self.message = message
        self.token = token


def _unquote(token):
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        if body[i] == "`" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@v_args(inline=True)
class _Build(Transformer):
    def disjunction(self, *items):
        return any_of(*(i for i in items if not isinstance(i, Token)))

    def conjunction(self, *items):
        return all_of(*(i for i in items if not isinstance(i, Token)))

    def negated(self, _not, operand):
        return Not(operand)

    def text(self, token):
        return (token, _unquote(token))

    def boolean(self, token):
        return (token, token.lower() == "true")

    def texts(self, *tokens):
        return (tokens[0], tuple(_unquote(t) for t in tokens))

    def comparison(self, attribute, operator, value):
        value_token, value = value
        name = _ATTRIBUTE_BY_LOWER.get(attribute[len("user.") :].lower())
        if name is None:
            raise _Semantic(
                _("Unknown attribute %(attr)s; rules can use %(known)s.")
                % {
                    "attr": attribute,
                    "known": ", ".join(f"user.{a}" for a in sorted(ATTRIBUTES)),
                },
                attribute,
            )
        op = _OPERATOR_BY_LOWER.get(operator.lower())
        kind = ATTRIBUTES[name][1]
        allowed = BOOL_OPERATORS if kind is bool else STRING_OPERATORS
        if op not in allowed:
            raise _Semantic(
                _("Unknown operator %(op)s for user.%(attr)s; use one of %(ops)s.")
                % {"op": operator, "attr": name, "ops": ", ".join(allowed)},
                operator,
            )
        listed = op in ("-in", "-notIn")
        if kind is bool and not isinstance(value, bool):
            raise _Semantic(
                _("user.%(attr)s is true or false, not text.") % {"attr": name}, value_token
            )
        if kind is str and isinstance(value, bool):
            raise _Semantic(
                _('user.%(attr)s is text: write the value in double quotes, e.g. "%(v)s".')
                % {"attr": name, "v": value_token},
                value_token,
            )
        if listed != isinstance(value, tuple):
            message = (
                _('%(op)s takes a list of values, e.g. ["Sales", "Marketing"].')
                if listed
                else _("%(op)s takes one value; use -in for a list.")
            )
            raise _Semantic(message % {"op": op}, value_token)
        return Condition(name, op, value)


@lru_cache(maxsize=512)
def parse_rule(text):
    """The rule ``text`` as a tree; raises RuleSyntaxError saying what is wrong, and where.

    Trees are immutable, so the same text read again returns the same tree."""
    if not text or not text.strip():
        raise RuleSyntaxError(_("The rule is empty."), text=text or "", position=0)
    if len(text) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(
            _("A rule is at most %(max)s characters long.") % {"max": MAX_RULE_LENGTH},
            text=text,
            position=MAX_RULE_LENGTH,
        )
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        if text[exc.pos_in_stream] == '"':
            raise RuleSyntaxError(
                _("This value has no closing double quote."), text=text, position=exc.pos_in_stream
            ) from None
        raise RuleSyntaxError(
            _("Unexpected “%(char)s”; expected %(expected)s.")
            % {"char": text[exc.pos_in_stream], "expected": _expected(exc)},
            text=text,
            position=exc.pos_in_stream,
        ) from None
    except UnexpectedEOF as exc:
        raise RuleSyntaxError(
            _("The rule ends too early; expected %(expected)s.") % {"expected": _expected(exc)},
            text=text,
            position=len(text.rstrip()),
        ) from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            raise RuleSyntaxError(
                _("The rule ends too early; expected %(expected)s.") % {"expected": _expected(exc)},
                text=text,
                position=len(text.rstrip()),
            ) from None
        raise RuleSyntaxError(
            _("Unexpected “%(found)s”; expected %(expected)s.")
            % {"found": token, "expected": _expected(exc)},
            text=text,
            position=token.start_pos,
        ) from None
    _check_depth(tree, text)
    try:
        return _Build().transform(tree)
    except VisitError as exc:
        error = exc.orig_exc
        if isinstance(error, _Semantic):
            raise RuleSyntaxError(
                error.message, text=text, position=error.token.start_pos
            ) from None
        raise


_LOGICAL = {"negated", "conjunction", "disjunction"}


def _check_depth(tree, text):
    """Refuse a parse tree nested deeper than MAX_RULE_DEPTH, pointing at where it gets too
    deep (looked at without recursion, so any depth is safe here)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in _LOGICAL:
            depth += 1
        if depth > MAX_RULE_DEPTH:
            raise RuleSyntaxError(
                _("The rule is nested too deeply; use at most %(max)s levels of -not, -and, -or.")
                % {"max": MAX_RULE_DEPTH},
                text=text,
                position=_first_position(node),
            )
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))


def _first_position(node):
    while isinstance(node, Tree):
        node = node.children[0]
    return node.start_pos


def _expected(exc):
    names = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    described = []
    for name in names:
        words = str(_EXPECTED.get(name, name))
        if words not in described:
            described.append(words)
    if not described:
        return _("something else")
    if len(described) == 1:
        return described[0]
    return _("%(some)s or %(last)s") % {"some": ", ".join(described[:-1]), "last": described[-1]}
