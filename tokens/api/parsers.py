"""The API's request parser: DRF's JSONParser, with absurd nesting refused as bad input."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser; a body nested too deeply to decode is a 400 parse_error, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json's decoder recurses once per level of nesting, so ~1,000 brackets (a few KB
            # of body) exhaust the stack. No body this API accepts is nested beyond one level.
            raise ParseError("JSON parse error - nested too deeply.") from None
