"""Hypothesis strategies: random rules in the supported syntax, and random people."""

from hypothesis import strategies as st

from directory.rules import ATTRIBUTES, STRING_OPERATORS, Condition, Not, all_of, any_of

# Letters whose case A-Z folding treats differently from Unicode's (é/É, ß, dotted İ, ı),
# LIKE's wildcards and escape, and the rule syntax's quote and escape characters.
ALPHABET = "aAbBsSzZ éÉßİıñÑ%_\\`\"'-."
texts = st.text(alphabet=ALPHABET, max_size=4)
TEXT_ATTRIBUTES = sorted(name for name, (_f, kind) in ATTRIBUTES.items() if kind is str)
BOOL_ATTRIBUTES = sorted(name for name, (_f, kind) in ATTRIBUTES.items() if kind is bool)


@st.composite
def text_conditions(draw):
    attribute = draw(st.sampled_from(TEXT_ATTRIBUTES))
    operator = draw(st.sampled_from(STRING_OPERATORS))
    if operator in ("-in", "-notIn"):
        value = tuple(draw(st.lists(texts, min_size=1, max_size=3)))
    else:
        value = draw(texts)
    return Condition(attribute, operator, value)


bool_conditions = st.builds(
    Condition,
    st.sampled_from(BOOL_ATTRIBUTES),
    st.sampled_from(["-eq", "-ne"]),
    st.booleans(),
)
conditions = st.one_of(text_conditions(), bool_conditions)

rules = st.recursive(
    conditions,
    lambda children: st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=3).map(lambda items: all_of(*items)),
        st.lists(children, min_size=2, max_size=3).map(lambda items: any_of(*items)),
    ),
    max_leaves=8,
)


def literals(rule):
    """The text values a rule compares with."""
    if isinstance(rule, Condition):
        if isinstance(rule.value, tuple):
            return list(rule.value)
        return [] if isinstance(rule.value, bool) else [rule.value]
    operands = [rule.operand] if isinstance(rule, Not) else rule.operands
    return [value for operand in operands for value in literals(operand)]


def near(values):
    """Text that often equals, starts with or contains one of ``values``, in another case."""
    if not values:
        return texts
    changed = st.tuples(
        st.sampled_from(values),
        st.sampled_from([str.upper, str.lower, str.swapcase, str]),
        texts,
        texts,
    ).map(lambda t: t[2][:1] * (len(t[3]) % 2) + t[1](t[0]) + t[3][:1])
    return st.one_of(changed, texts)


def people(rule):
    """Random people whose attributes are close to the values ``rule`` compares with."""
    value = near(literals(rule))
    return st.fixed_dictionaries(
        {
            "department": value,
            "job_title": value,
            "company_name": value,
            "employee_id": value,
            "display_name": value,
            "user_type": st.one_of(st.sampled_from(["Member", "Guest"]), value),
            "email": value,
            "is_active": st.booleans(),
        }
    )
