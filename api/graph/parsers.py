"""The API's request bodies: JSON objects whose text the database can store.

PostgreSQL refuses the NUL character in text; a ``\\u0000`` anywhere in a body (a key or a
value, however deep) would otherwise reach it as a server error, so it is a 400 here.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NUL = "\x00"


MAX_DEPTH = 64  # deeper than any Graph body; a deeper one is refused, not recursed into
TOO_DEEP = f"The request body is nested deeper than {MAX_DEPTH} levels."


def _check(data):
    """Refuses a NUL anywhere and nesting deeper than MAX_DEPTH, walking without recursion."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ParseError(TOO_DEEP)
        if isinstance(value, str):
            if NUL in value:
                raise ParseError("The request body contains a NUL character (\\u0000).")
        elif isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


class GraphJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                f"The request body is nested deeper than {MAX_DEPTH} levels."
            ) from None
        _check(data)
        return data
