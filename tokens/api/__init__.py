"""The HTTP API: views (on one base class), urls, serializers, the Bearer authentication,
the cookie mode and its CSRF defence, what a request says of its client, the parser, the
schema's extensions, and the one place errors become answers (errors)."""
