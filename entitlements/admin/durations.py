"""Durations as people type and read them: "30 days", "8 hours", "1 day 12 hours".

ISO 8601 (``P30D``, ``PT8H``, ``P2W``) and Django's own form (``3 00:00:00``) are accepted too,
so values pasted from the API or from older forms keep working.
"""

import re
from datetime import timedelta

from django import forms
from django.contrib.admin import helpers, options
from django.contrib.admin.templatetags import admin_list
from django.db import models
from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext

# (seconds, the words English speakers type); the active language's words are added on parse.
_UNITS = [
    (7 * 86400, ["w", "wk", "wks", "week", "weeks"]),
    (86400, ["d", "day", "days"]),
    (3600, ["h", "hr", "hrs", "hour", "hours"]),
    (60, ["m", "min", "mins", "minute", "minutes"]),
    (1, ["s", "sec", "secs", "second", "seconds"]),
]
_ISO_WEEKS = re.compile(r"^P(\d+)W$", re.IGNORECASE)
_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*([^\W\d_]+)")
_SEPARATORS = re.compile(r"[\s,;+]+")


def _translated_unit_words():
    """The unit words of the active language, as the translators wrote them."""
    return {
        7 * 86400: [pgettext("duration unit", "week"), pgettext("duration unit", "weeks")],
        86400: [pgettext("duration unit", "day"), pgettext("duration unit", "days")],
        3600: [pgettext("duration unit", "hour"), pgettext("duration unit", "hours")],
        60: [pgettext("duration unit", "minute"), pgettext("duration unit", "minutes")],
        1: [pgettext("duration unit", "second"), pgettext("duration unit", "seconds")],
    }


def _unit_seconds():
    seconds_by_word = {}
    for seconds, words in _UNITS:
        for word in words:
            seconds_by_word[word] = seconds
    for seconds, words in _translated_unit_words().items():
        for word in words:
            seconds_by_word.setdefault(word.casefold(), seconds)
    return seconds_by_word


def parse_words(text):
    """``timedelta`` for "30 days", "1 day 12 hours", "90 minutes", "2w"; None if not words."""
    text = text.strip().casefold()
    conjunction = str(pgettext("duration separator", "and")).casefold()
    units = _unit_seconds()
    total = 0.0
    position = 0
    found = False
    for match in _PART.finditer(text):
        between = text[position : match.start()]
        if _SEPARATORS.sub(" ", between).strip() not in ("", "and", conjunction):
            return None
        seconds = units.get(match.group(2))
        if seconds is None:
            return None
        total += float(match.group(1).replace(",", ".")) * seconds
        position = match.end()
        found = True
    if not found or text[position:].strip(" ,;."):
        return None
    return timedelta(seconds=round(total))


def parse(text):
    """``timedelta`` for anything a person may type in a duration box, or None."""
    text = (text or "").strip()
    if not text:
        return None
    weeks = _ISO_WEEKS.match(text)
    if weeks:
        return timedelta(weeks=int(weeks.group(1)))
    if re.fullmatch(r"[-+]?\d+(?:[.,]\d+)?", text):
        return None  # a bare number: seconds or days? The person says which.
    if text.upper() in ("P", "PT"):
        return None  # ISO 8601 with no number in it
    in_words = parse_words(text)
    if in_words is not None:
        return in_words
    return parse_duration(text.upper() if text[:1] in "pP" else text)


def words(value):
    """A stored duration as a person reads it: "30 days", "1 day 12 hours", "45 minutes"."""
    if value is None:
        return ""
    if value.microseconds or value < timedelta(0):
        return duration_iso_string(value)  # rare values from the API, shown without loss
    days, rest = value.days, value.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append(ngettext("%(n)d day", "%(n)d days", days) % {"n": days})
    if hours:
        parts.append(ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours})
    if minutes:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes})
    if seconds or not parts:
        parts.append(ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds})
    return " ".join(parts)


class DurationInput(forms.TextInput):
    """A short text box that shows a stored duration in words."""

    def __init__(self, attrs=None):
        super().__init__(
            {
                "size": 14,
                "placeholder": _("e.g. 30 days"),
                "class": "duration-input",
                **(attrs or {}),
            }
        )

    def format_value(self, value):
        if isinstance(value, timedelta):
            return words(value)
        return super().format_value(value)


class HumanDurationField(forms.DurationField):
    """A duration typed as "30 days", "8 hours", "2 weeks", "1 day 12 hours" or ISO 8601."""

    widget = DurationInput
    default_error_messages = {
        "invalid": _(
            "Enter a duration such as “30 days”, “8 hours”, “2 weeks” or “1 day 12 hours” "
            "(ISO 8601 such as “P30D” works too)."
        ),
        "negative": _("A duration cannot be negative."),
        "too_long": _("A duration can be at most %(max)s."),
    }
    LONGEST = timedelta(days=36500)

    def __init__(self, **kwargs):
        if not kwargs.get("help_text"):
            kwargs["help_text"] = _(
                "For example “30 days”, “8 hours”, “2 weeks” or “1 day 12 hours”."
            )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, timedelta):
            return words(value)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, timedelta):
            return value
        try:
            duration = parse(str(value))
        except OverflowError:
            duration = None
        if duration is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if duration < timedelta(0):
            raise forms.ValidationError(self.error_messages["negative"], code="negative")
        if duration > self.LONGEST:
            raise forms.ValidationError(
                self.error_messages["too_long"],
                code="too_long",
                params={"max": words(self.LONGEST)},
            )
        return duration


def _display_for_field(original):
    def display_for_field(value, field, empty_value_display, *args, **kwargs):
        if isinstance(field, models.DurationField) and value is not None:
            return words(value)
        return original(value, field, empty_value_display, *args, **kwargs)

    display_for_field.words_durations = True
    return display_for_field


def use_human_durations(site):
    """Every duration in ``site``'s forms, lists and read-only pages typed and shown in words.

    Django builds a form field for a model field from ``FORMFIELD_FOR_DBFIELD_DEFAULTS`` (copied
    into each model admin when it is registered, into each inline per request) and shows
    read-only values and list cells through ``display_for_field``; both are set here, once,
    instead of in every model admin of every app (directory's cannot import this module).
    """
    override = {"form_class": HumanDurationField, "widget": DurationInput}
    options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DurationField] = override
    for model_admin in site._registry.values():
        model_admin.formfield_overrides.setdefault(models.DurationField, dict(override))
    for module in (helpers, admin_list):
        if not getattr(module.display_for_field, "words_durations", False):
            module.display_for_field = _display_for_field(module.display_for_field)
