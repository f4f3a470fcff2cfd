"""The API's request bodies: JSON objects whose text the database can store.

PostgreSQL refuses the NUL character in text; a ``\\u0000`` anywhere in a body (a key or a
value, however deep) would otherwise reach it as a server error, so it is a 400 here.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NUL = "\x00"


def _has_nul(value):
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class GraphJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_nul(data):
            raise ParseError("The request body contains a NUL character (\\u0000).")
        return data
