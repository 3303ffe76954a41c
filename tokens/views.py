"""Thin views: validate the body, call one service, shape the response."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens import services
from tokens.clients import (
    IDEMPOTENCY_KEY_PATTERN,
    client_info,
    idempotency_key,
    set_device_cookie,
)
from tokens.serializers import (
    ErrorSerializer,
    MeSerializer,
    ObtainSerializer,
    PasswordChangeSerializer,
    RefreshTokenSerializer,
    SessionSerializer,
    TokenPairSerializer,
)

ERROR = OpenApiResponse(ErrorSerializer)
UNAVAILABLE = OpenApiResponse(ErrorSerializer, description="The token store is unavailable.")
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many failed password checks "
                            "for this username or client; see Retry-After.")


def idempotency_parameter(description: str) -> OpenApiParameter:
    """The Idempotency-Key request header, as tokens.clients.idempotency_key accepts it."""
    return OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                            description=description, pattern=IDEMPOTENCY_KEY_PATTERN)


def token_response(pair: services.TokenPair) -> Response:
    """The pair as TokenPairSerializer documents it (a plain dict: this is the hot path)."""
    data = {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_expires_in": pair.refresh_expires_in,
    }
    # RFC 6749 5.1: responses carrying tokens must not be cached.
    return Response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class ObtainTokenView(PublicView):
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
        response = token_response(login.pair)
        set_device_cookie(response, request, login.device_cookie)
        return response


class RefreshTokenView(PublicView):
    @extend_schema(
        request=RefreshTokenSerializer,
        parameters=[idempotency_parameter(
            "Random for each refresh attempt (a UUID4), sent again unchanged only when "
            "retrying that attempt (after a timeout, a 503, a lost reply): the retry then gets "
            "the same successor, however late, instead of a token_reused verdict. Keep it in "
            "memory only.")],
        responses={200: TokenPairSerializer, 400: ERROR, 401: ERROR, 503: UNAVAILABLE},
        summary="Rotate a refresh token: it is spent, and a new pair is returned.",
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.rotate_refresh(
            refresh_token=serializer.validated_data["refresh_token"], client=client_info(request),
            idempotency_key=idempotency_key(request),
        )
        return token_response(pair)


class LogoutView(PublicView):
    @extend_schema(
        request=RefreshTokenSerializer,
        responses={204: None, 400: ERROR, 503: UNAVAILABLE},
        summary="Log out: end the session of a refresh token (204 for any token string).",
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.logout(refresh_token=serializer.validated_data["refresh_token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(
        request=None,
        responses={204: None, 401: ERROR, 503: UNAVAILABLE},
        summary="End every session of the current user.",
    )
    def post(self, request: Request) -> Response:
        services.revoke_all_sessions(user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    accepts_change_retry = True  # see BearerAuthentication.retry_of

    @extend_schema(
        request=PasswordChangeSerializer,
        parameters=[idempotency_parameter(
            "Random for each change attempt, sent again unchanged only when retrying it with "
            "the same token and body: a retry whose first reply was lost then answers as that "
            "change did.")],
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
        return token_response(pair)


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
        services.end_session(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer, 401: ERROR, 503: UNAVAILABLE})
    def get(self, request: Request) -> Response:
        user = request.user  # the shape MeSerializer documents, without its per-call cost
        return Response({"id": user.pk, "username": user.get_username(), "email": user.email})
