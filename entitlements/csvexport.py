"""The one CSV writer of every export: streamed, and safe to open in a spreadsheet.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab
or a carriage return) as a formula, some also after leading spaces or line breaks, so a
justification like ``=HYPERLINK(...)`` written as it is would run on the auditor's machine.
Such cells get a leading apostrophe, which spreadsheets show as text (OWASP, "CSV
injection").
"""

import csv

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """The text of one cell: empty for None, ISO 8601 for times, neutralised if formula-like."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    formula = text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS[:4])
    return "'" + text if formula else text


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a stream."""

    def write(self, value):
        return value


def csv_lines(rows):
    """The CSV lines of ``rows`` (iterables of cell values), every cell through ``csv_cell``."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def csv_response(rows, filename):
    """A streamed download of ``rows``, the first of which is the header."""
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
