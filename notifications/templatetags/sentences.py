"""Sentences that embed a date: one full stop where the date already ends with one.

English times end in "a.m." or "p.m." (and some dates in an abbreviation), so a sentence
"... ends on {date}." would end in "a.m.."; typography wants one full stop for both.
"""

import re

from django import template

register = template.Library()

# exactly two full stops: an abbreviation's and the sentence's (an ellipsis is left alone)
_DOUBLE_FULL_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")


def one_full_stop(text):
    """``text`` with each doubled full stop made single."""
    return _DOUBLE_FULL_STOP.sub(".", str(text))


@register.filter(name="one_full_stop", is_safe=True)
def one_full_stop_filter(value):
    return one_full_stop(value)
