"""The API's renderer: JSON only, in one spelling."""

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer with DRF's default spelling fixed (compact, UTF-8, strict JSON): a
    host project's UNICODE_JSON, COMPACT_JSON or STRICT_JSON do not change the app's bodies."""

    ensure_ascii = False
    compact = True
    strict = True
