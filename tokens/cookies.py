"""Cookie mode for browsers: the refresh token in an HttpOnly cookie that scripts never see,
sent only to the cookie endpoints (/api/auth/cookie/...), and the CSRF defence those
endpoints need because a browser attaches the cookie by itself.

CSRF: every unsafe request to a cookie endpoint must carry the custom header
`X-Requested-With` (any value). A cross-site form cannot set a header, and a cross-origin
`fetch` can only after a CORS preflight that only DJANGO_CORS_ALLOWED_ORIGINS pass; an
`Origin` header, when sent, must be this site's own or one of those origins too.
"""

from django.conf import settings
from django.http import HttpResponse
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from tokens.services import TokenPair

COOKIE = "tokens_refresh"
# Narrow: the browser sends the refresh token only to the cookie endpoints, never with the
# rest of the API (a `__Host-` name would need Path=/, sending it everywhere).
COOKIE_PATH = "/api/auth/cookie/"
CSRF_HEADER = "X-Requested-With"


def refresh_token(request: Request) -> str:
    """The refresh token of a cookie-mode request ('' when there is none: an invalid token)."""
    return request.COOKIES.get(COOKIE, "")


def set_refresh_cookie(response: HttpResponse, pair: TokenPair) -> None:
    """Hand the browser the pair's refresh token, for as long as it lives."""
    response.set_cookie(
        COOKIE, pair.refresh_token, max_age=pair.refresh_expires_in, path=COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
    )


def expire_refresh_cookie(response: HttpResponse) -> None:
    """Remove the cookie: its session has ended, and a dead cookie must not block a login."""
    response.delete_cookie(COOKIE, path=COOKIE_PATH, samesite="Strict")


def check_csrf(request: Request) -> None:
    """Refuse (403 csrf_failed) an unsafe cookie-mode request that did not come from the app."""
    if request.method in SAFE_METHODS:
        return
    if not request.headers.get(CSRF_HEADER):
        raise PermissionDenied(f"Cookie requests must send the {CSRF_HEADER} header.",
                               code="csrf_failed")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in _allowed_origins(request):
        raise PermissionDenied("Origin not allowed.", code="csrf_failed")


def _allowed_origins(request: Request) -> set[str]:
    own = f"{request.scheme}://{request.get_host()}"
    return {own, *getattr(settings, "CORS_ALLOWED_ORIGINS", ())}
