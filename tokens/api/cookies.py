"""Cookie mode for browsers: the refresh token in an HttpOnly cookie that scripts never see,
and the CSRF defence the cookie endpoints (/api/auth/cookie/...) need because a browser
attaches the cookie by itself.

The cookie: over HTTPS `__Host-tokens_refresh` (Secure, Path=/, no Domain: no other
subdomain can set or shadow it, "cookie tossing"); over plain HTTP (development), where a
`__Host-` name is impossible, `tokens_refresh` scoped to Path=/api/auth/cookie/. A request
carrying the name twice is refused, never guessed at.

CSRF: every unsafe request to a cookie endpoint must carry the custom header
`X-Requested-With` (any value). A cross-site form cannot set a header, and a cross-origin
`fetch` can only after a CORS preflight that only DJANGO_CORS_ALLOWED_ORIGINS pass; an
`Origin` header, when sent, must be this site's own, a CSRF_TRUSTED_ORIGINS entry, or one
of those origins.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from tokens.types import TokenPair

SECURE_COOKIE = "__Host-tokens_refresh"
PLAIN_COOKIE = "tokens_refresh"
COOKIE_PATH = "/api/auth/cookie/"  # where the plain cookie is sent
CSRF_HEADER = "X-Requested-With"
DEFAULT_PORTS = {"http": "80", "https": "443"}


def cookie_name() -> str:
    """The cookie's name: `__Host-` whenever cookies are Secure (DJANGO_HTTPS)."""
    return SECURE_COOKIE if settings.SESSION_COOKIE_SECURE else PLAIN_COOKIE


def refresh_token(request: Request) -> str:
    """The refresh token of a cookie-mode request ('' when there is none: an invalid token)."""
    name = cookie_name()
    if _names(request.META.get("HTTP_COOKIE", "")).count(name) > 1:
        # Another cookie of the same name (set by a sibling subdomain, say): which one the
        # browser meant cannot be told, so neither is used, and neither is expired.
        raise ValidationError({name: ["The cookie is sent more than once."]})
    return request.COOKIES.get(name, "")


def _names(header: str) -> list[str]:
    """The cookie names of a Cookie header, read as Django's parse_cookie reads them (split
    at the first '=', stripped): `tokens_refresh =x` is a second cookie of the name too."""
    return [chunk.split("=", 1)[0].strip() for chunk in header.split(";") if "=" in chunk]


def set_refresh_cookie(response: HttpResponse, pair: TokenPair) -> None:
    """Hand the browser the pair's refresh token, for as long as it lives."""
    secure = settings.SESSION_COOKIE_SECURE
    response.set_cookie(
        cookie_name(), pair.refresh_token, max_age=pair.refresh_expires_in,
        path="/" if secure else COOKIE_PATH, secure=secure, httponly=True, samesite="Strict",
    )


def expire_refresh_cookie(response: HttpResponse) -> None:
    """Remove the cookie: its session has ended."""
    secure = settings.SESSION_COOKIE_SECURE
    response.set_cookie(cookie_name(), "", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT",
                        path="/" if secure else COOKIE_PATH, secure=secure, httponly=True,
                        samesite="Strict")


def check_csrf(request: Request) -> None:
    """Refuse (403 csrf_failed) an unsafe cookie-mode request that did not come from the app."""
    if request.method in SAFE_METHODS:
        return
    if not request.headers.get(CSRF_HEADER):
        raise PermissionDenied(f"Cookie requests must send the {CSRF_HEADER} header.",
                               code="csrf_failed")
    origin = request.headers.get("Origin")
    if origin is not None and _origin(origin) not in _allowed_origins(request):
        raise PermissionDenied("Origin not allowed.", code="csrf_failed")


def _allowed_origins(request: Request) -> set[str]:
    own = f"{request.scheme}://{request.get_host()}"
    listed = (*getattr(settings, "CORS_ALLOWED_ORIGINS", ()),
              *getattr(settings, "CSRF_TRUSTED_ORIGINS", ()))
    return {_origin(origin) for origin in (own, *listed)} - {""}


def _origin(value: str) -> str:
    """scheme://host[:port], lower-cased, without a default port; '' for anything else
    (`null`, a path, another scheme)."""
    parts = urlsplit(value.strip().lower())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return ""
    try:
        port = parts.port
    except ValueError:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or str(port) == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
