"""Cookie mode for browsers: the body-mode endpoints again, with the refresh token in an
HttpOnly cookie (tokens.api.cookies) and the CSRF check every unsafe request passes."""

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tokens.api import cookies
from tokens.api.docs import (
    CHANGE_KEY,
    COOKIE_PARAMETER,
    CSRF_FAILED,
    CSRF_PARAMETER,
    ERROR,
    REFRESH_KEY,
    THROTTLED,
    UNAVAILABLE,
)
from tokens.api.schema import extend_schema, extend_schema_view
from tokens.api.serializers import (
    CookiePairSerializer,
    ObtainSerializer,
    PasswordChangeSerializer,
)
from tokens.api.views import (
    LogoutView,
    ObtainTokenView,
    PasswordChangeView,
    RefreshTokenView,
    token_response,
)
from tokens.types import TokenPair

SESSION_OVER = {"token_reused", "token_expired", "user_inactive"}


class CookieMode:
    """The refresh token travels in an HttpOnly cookie (browsers; see tokens.api.cookies)."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if method in self.http_method_names and hasattr(self, method):  # else a 405
            cookies.check_csrf(request)

    def refresh_token(self, request: Request) -> str:
        return cookies.refresh_token(request)  # the body is not read in cookie mode

    def pair_response(self, pair: TokenPair) -> Response:
        response = token_response(pair, with_refresh_token=False)
        cookies.set_refresh_cookie(response, pair)
        return response

    def finalize_response(self, request: Request, response: Response, *args, **kwargs):
        # Expire the cookie only when its session is certainly over for this browser: a
        # logout done, a reuse (the session is gone), an expired token, an inactive user.
        # Not on token_invalid or session_revoked: a late reply to another tab (its cookie
        # already replaced, or its generation moved on by a password change in this tab),
        # or a cookie tossed by a sibling site, must not delete the browser's live cookie.
        # A 503, a 403 or a 400 ends nothing.
        ended = getattr(self, "ends_session", False) and status.is_success(response.status_code)
        code = response.data.get("code") if isinstance(response.data, dict) else None
        if ended or (self.reads_refresh_token and code in SESSION_OVER):
            cookies.expire_refresh_cookie(response)
        return super().finalize_response(request, response, *args, **kwargs)


@extend_schema_view(post=extend_schema(
    request=ObtainSerializer, parameters=[CSRF_PARAMETER],
    responses={200: CookiePairSerializer, 400: ERROR, 401: ERROR, 403: CSRF_FAILED,
               429: THROTTLED, 503: UNAVAILABLE},
    summary="Log in (cookie mode): the refresh token is set as an HttpOnly cookie, not "
            "returned.",
))
class CookieObtainTokenView(CookieMode, ObtainTokenView):
    pass


@extend_schema_view(post=extend_schema(
    request=None, parameters=[CSRF_PARAMETER, COOKIE_PARAMETER, REFRESH_KEY],
    responses={200: CookiePairSerializer, 400: ERROR, 401: ERROR, 403: CSRF_FAILED,
               503: UNAVAILABLE},
    summary="Rotate the refresh token of the cookie (cookie mode): the cookie is replaced; "
            "expired on token_reused, token_expired and user_inactive.",
))
class CookieRefreshTokenView(CookieMode, RefreshTokenView):
    pass


@extend_schema_view(post=extend_schema(
    request=None, parameters=[CSRF_PARAMETER, COOKIE_PARAMETER],
    responses={204: None, 400: ERROR, 403: CSRF_FAILED, 503: UNAVAILABLE},
    summary="Log out (cookie mode): end the cookie's session and expire the cookie.",
))
class CookieLogoutView(CookieMode, LogoutView):
    pass


@extend_schema_view(post=extend_schema(
    request=PasswordChangeSerializer, parameters=[CSRF_PARAMETER, CHANGE_KEY],
    responses={200: CookiePairSerializer, 400: ERROR, 401: ERROR, 403: CSRF_FAILED,
               429: THROTTLED, 503: UNAVAILABLE},
    summary="Change the password (cookie mode): the new refresh token replaces the cookie.",
))
class CookiePasswordChangeView(CookieMode, PasswordChangeView):
    pass
