"""Domain errors of the token service, and the one place that turns them into API errors.

Services raise the domain errors below; they know nothing of HTTP. `api_exception_handler`
(DRF's EXCEPTION_HANDLER) maps them to responses, and gives every API error the body
``{"detail": str, "code": str}`` (plus ``errors`` with field messages on a 400).
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status


class TokenServiceError(Exception):
    """Base of all domain errors; `code` is what the API promises to clients."""

    code = "token_error"
    status_code = status.HTTP_401_UNAUTHORIZED
    message = "Token error."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class InvalidCredentials(TokenServiceError):
    code = "invalid_credentials"
    message = "No active account found with the given credentials."


class TokenInvalid(TokenServiceError):
    code = "token_invalid"
    message = "Token is invalid."


class TokenExpired(TokenServiceError):
    code = "token_expired"
    message = "Token has expired."


class TokenReused(TokenServiceError):
    code = "token_reused"
    message = "Refresh token was already used; the session has been ended."


class SessionRevoked(TokenServiceError):
    code = "session_revoked"
    message = "The session has ended."


class UserInactive(TokenServiceError):
    code = "user_inactive"
    message = "User account is disabled."


class SessionNotFound(TokenServiceError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND
    message = "No such session."


class LoginThrottled(TokenServiceError):
    """Too many wrong passwords for this username or from this client, for now."""

    code = "throttled"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    message = "Too many failed login attempts."

    def __init__(self, *, wait: float, budgets: tuple[str, ...] = ()) -> None:
        self.wait = wait  # seconds until a new attempt may be counted
        self.budgets = budgets  # the scopes of the full budgets ("username", "ip", "device")
        super().__init__()


class ResetThrottled(LoginThrottled):
    """Too many password reset requests for this address or from this client, for now."""

    message = "Too many password reset requests."


class ResetLinkInvalid(TokenServiceError):
    """A reset link that is used, expired, altered, or names no user."""

    code = "invalid_reset_link"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The password reset link is invalid or has expired."


class StoreUnavailable(TokenServiceError):
    """Redis is down, timing out, or refused: never reported as a token problem."""

    code = "token_store_unavailable"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    message = "The token store is unavailable. Try again shortly."


class ReplicasBehind(StoreUnavailable):
    """Fewer replicas than TOKENS["REPLICA_ACKS"] acknowledged a write in time: the write
    stands on the primary (`result`: what the store call would have returned), so whatever
    follows it is done before the 503, and the client's retry finds it."""

    def __init__(self, result: object = None):
        super().__init__()
        self.result = result


class StoreMisconfigured(StoreUnavailable):
    """The configured token cache would lose tokens silently; nothing is stored in it."""


class KeysMisconfigured(TokenServiceError):
    """TOKENS' keys cannot sign or verify (`check` says so too): a 503, so that clients keep
    their tokens (a 401 would log them out) until the keys are fixed; `reason` is for logs."""

    code = "token_keys_misconfigured"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    message = "The token service is misconfigured. Try again later."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def to_api_exception(exc: TokenServiceError) -> exceptions.APIException:
    """The API error for a domain error; 401s are AuthenticationFailed so DRF adds the challenge."""
    if exc.status_code == status.HTTP_401_UNAUTHORIZED:
        return exceptions.AuthenticationFailed(detail=str(exc), code=exc.code)
    if isinstance(exc, LoginThrottled):
        return exceptions.Throttled(wait=exc.wait, detail=str(exc), code=exc.code)
    api_exc = exceptions.APIException(detail=str(exc), code=exc.code)
    api_exc.status_code = exc.status_code
    return api_exc


def api_exception_handler(exc: Exception, context: dict[str, Any]):
    """DRF exception handler: domain errors mapped once, every error body in one shape."""
    # Imported here: rest_framework.views imports this module (through the settings).
    from rest_framework.serializers import as_serializer_error
    from rest_framework.views import exception_handler

    if isinstance(exc, TokenServiceError):
        exc = to_api_exception(exc)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    response.data = _error_body(exc)
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.setdefault("WWW-Authenticate", "Bearer")
    if response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response.setdefault("Retry-After", "1")
    return response


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return {"detail": "Invalid input.", "code": "invalid", "errors": exc.get_full_details()}
    code = getattr(exc.detail, "code", None) or exc.default_code
    return {"detail": str(exc.detail), "code": str(code)}
