"""Thin views: validate the body, call one service, shape the response."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens import services
from tokens.api import cookies
from tokens.api.clients import (
    IDEMPOTENCY_KEY_PATTERN,
    client_info,
    idempotency_key,
    set_device_cookie,
)
from tokens.api.serializers import (
    CookiePairSerializer,
    ErrorSerializer,
    MeSerializer,
    ObtainSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    RefreshTokenSerializer,
    SessionSerializer,
    TokenPairSerializer,
)
from tokens.services import password_reset
from tokens.signing_keys import keyset
from tokens.types import EndReason, TokenPair

ERROR = OpenApiResponse(ErrorSerializer)
# Seconds a verifier may cache the key set: a new key is published as a fallback (verify
# only) for longer than this before it signs anything (README, "Rotating keys").
JWKS_MAX_AGE = 300
UNAVAILABLE = OpenApiResponse(ErrorSerializer, description="The token store is unavailable.")
CSRF_FAILED = OpenApiResponse(ErrorSerializer, description="csrf_failed: no X-Requested-With "
                              "header, or an Origin that is not allowed.")
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many failed password checks "
                            "for this username or client; see Retry-After.")


def idempotency_parameter(description: str) -> OpenApiParameter:
    """The Idempotency-Key request header, as tokens.api.clients.idempotency_key accepts it."""
    return OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                            description=description, pattern=IDEMPOTENCY_KEY_PATTERN)


REFRESH_KEY = idempotency_parameter(
    "Random for each refresh attempt (a UUID4), sent again unchanged only when retrying that "
    "attempt (after a timeout, a 503, a lost reply): the retry then gets the same successor "
    "within RETRY_WINDOW instead of a token_reused verdict. Keep it in memory only, and do "
    "not log it.")
CHANGE_KEY = idempotency_parameter(
    "Random for each change attempt, sent again unchanged only when retrying it with the same "
    "token and body: a retry whose first reply was lost then answers as that change did.")


def token_response(pair: TokenPair, *, with_refresh_token: bool = True) -> Response:
    """The pair as TokenPairSerializer documents it (a plain dict: this is the hot path)."""
    data = {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_expires_in": pair.refresh_expires_in,
    }
    if not with_refresh_token:
        del data["refresh_token"]
    # RFC 6749 5.1: responses carrying tokens must not be cached.
    return Response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class BodyMode:
    """The refresh token travels in JSON bodies (API clients, native apps)."""

    def refresh_token(self, request: Request) -> str:
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["refresh_token"]

    def pair_response(self, pair: TokenPair) -> Response:
        return token_response(pair)


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


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    reads_refresh_token = False


class ObtainTokenView(BodyMode, PublicView):
    @extend_schema(
        request=ObtainSerializer,
        responses={200: TokenPairSerializer, 400: ERROR, 401: ERROR, 429: THROTTLED,
                   503: UNAVAILABLE},
        summary="Log in: start a session and get a token pair.",
    )
    def post(self, request: Request) -> Response:
        serializer = ObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login = services.obtain_pair(
            request=request._request, client=client_info(request), **serializer.validated_data
        )
        response = self.pair_response(login.pair)
        set_device_cookie(response, request, login.device_cookie)
        return response


class RefreshTokenView(BodyMode, PublicView):
    reads_refresh_token = True

    @extend_schema(
        request=RefreshTokenSerializer,
        parameters=[REFRESH_KEY],
        responses={200: TokenPairSerializer, 400: ERROR, 401: ERROR, 503: UNAVAILABLE},
        summary="Rotate a refresh token: it is spent, and a new pair is returned.",
    )
    def post(self, request: Request) -> Response:
        pair = services.rotate_refresh(
            refresh_token=self.refresh_token(request), client=client_info(request),
            idempotency_key=idempotency_key(request),
        )
        return self.pair_response(pair)


class LogoutView(BodyMode, PublicView):
    reads_refresh_token = True
    ends_session = True

    @extend_schema(
        request=RefreshTokenSerializer,
        responses={204: None, 400: ERROR, 503: UNAVAILABLE},
        summary="Log out: end the session of a refresh token (204 for any token string).",
    )
    def post(self, request: Request) -> Response:
        services.logout(refresh_token=self.refresh_token(request),
                        client=client_info(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(
        request=None,
        responses={204: None, 401: ERROR, 503: UNAVAILABLE},
        summary="End every session of the current user.",
    )
    def post(self, request: Request) -> Response:
        services.revoke_all_sessions(user_id=request.user.pk, reason=EndReason.LOGOUT_ALL,
                                     client=client_info(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(BodyMode, APIView):
    reads_refresh_token = False

    accepts_change_retry = True  # see BearerAuthentication.retry_of

    @extend_schema(
        request=PasswordChangeSerializer,
        parameters=[CHANGE_KEY],
        responses={200: TokenPairSerializer, 400: ERROR, 401: ERROR, 429: THROTTLED,
                   503: UNAVAILABLE},
        summary="Change the password: other sessions end, this one continues with a new pair.",
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.change_password(
            user=request.user, claims=request.auth, client=client_info(request),
            idempotency_key=idempotency_key(request), **serializer.validated_data,
        )
        return self.pair_response(pair)


class SessionListView(APIView):
    @extend_schema(
        responses={200: SessionSerializer(many=True), 401: ERROR, 503: UNAVAILABLE},
        summary="The current user's live sessions.",
    )
    def get(self, request: Request) -> Response:
        sessions = services.list_sessions(user=request.user)
        context = {"current_session_id": request.auth.sid}
        return Response(SessionSerializer(sessions, many=True, context=context).data)


class SessionDetailView(APIView):
    @extend_schema(
        responses={204: None, 401: ERROR,
                   404: OpenApiResponse(ErrorSerializer, description="Not a session id."),
                   503: UNAVAILABLE},
        summary="End one of the current user's sessions (204 also when it has already "
                "ended, so a retry after a lost reply answers as the first request did).",
    )
    def delete(self, request: Request, session_id: str) -> Response:
        services.end_session(user=request.user, session_id=session_id, reason=EndReason.LOGOUT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResponseThen(Response):
    """A response that calls `then` once it has been sent (WSGI servers close it then, just
    before they close the connection): `then` must return at once, whatever it starts."""

    def __init__(self, *args, then, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._then = then

    def close(self) -> None:
        try:
            super().close()
        finally:
            then, self._then = self._then, None
            if then is not None:
                then()


class PasswordResetView(PublicView):
    @extend_schema(
        request=PasswordResetSerializer,
        responses={202: OpenApiResponse(ErrorSerializer, description="Always, whether or not "
                   "an account matches: the matching active users get an email with a link."),
                   400: ERROR, 429: THROTTLED, 503: UNAVAILABLE},
        summary="Ask for a password reset link by email.",
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deliver_later = password_reset.request_reset(
            email=serializer.validated_data["email"], ip_address=client_info(request).ip_address)
        body = {"detail": "If an account has this address, a reset link is on its way.",
                "code": "reset_requested"}
        return ResponseThen(body, status=status.HTTP_202_ACCEPTED, then=deliver_later)


class PasswordResetConfirmView(PublicView):
    @extend_schema(
        request=PasswordResetConfirmSerializer,
        responses={204: None, 400: OpenApiResponse(ErrorSerializer, description=
                   "invalid_reset_link (used, expired or altered), or invalid (a weak "
                   "password: nothing changed)."), 503: UNAVAILABLE},
        summary="Set a new password with a reset link; every session of the user ends.",
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        password_reset.confirm_reset(ip_address=client_info(request).ip_address,
                                     **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JWKSView(PublicView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A JWK Set (RFC "
                   "7517): the current and fallback public keys with kid, alg and use; "
                   "empty with an HMAC algorithm, whose keys are secret.")},
        summary="The public keys that verify access tokens (JWKS).",
    )
    def get(self, request: Request) -> Response:
        keys = [dict(jwk) for jwk in keyset().public_jwks]
        return Response({"keys": keys}, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer, 401: ERROR, 503: UNAVAILABLE},
                   summary="The current user.")
    def get(self, request: Request) -> Response:
        user = request.user  # the shape MeSerializer documents, without its per-call cost
        return Response({"id": user.pk, "username": user.get_username(), "email": user.email})


# Cookie mode: the same endpoints, with the refresh token in the tokens_refresh cookie.
CSRF_PARAMETER = OpenApiParameter(
    cookies.CSRF_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
    description="Any value: proves the request came from the app (CSRF defence; browsers "
                "send a custom header cross-origin only after a CORS preflight).",
)
COOKIE_PARAMETER = OpenApiParameter(
    cookies.PLAIN_COOKIE, OpenApiTypes.STR, OpenApiParameter.COOKIE,
    description="The refresh token, set by the cookie-mode login: HttpOnly, SameSite=Strict; "
                f"named {cookies.SECURE_COOKIE} (Path=/) over HTTPS, {cookies.PLAIN_COOKIE} "
                f"(Path={cookies.COOKIE_PATH}) otherwise. The body is not read.",
)


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
