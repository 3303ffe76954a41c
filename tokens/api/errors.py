"""The one place that turns errors into API answers: each domain error's code gets its HTTP
status from STATUS_OF_CODE, and every API error has the body ``{"detail": str, "code": str}``
(plus ``errors`` with field messages on a 400)."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status

from tokens.exceptions import (
    LoginThrottled,
    PasswordRejected,
    TokenServiceError,
    WrongPassword,
)

# The status of each domain error's code (tokens.exceptions); any other code is a 401.
STATUS_OF_CODE = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "throttled": status.HTTP_429_TOO_MANY_REQUESTS,
    "invalid_reset_link": status.HTTP_400_BAD_REQUEST,
    "invalid": status.HTTP_400_BAD_REQUEST,
    "token_store_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    "token_keys_misconfigured": status.HTTP_503_SERVICE_UNAVAILABLE,
}


def status_of(exc: TokenServiceError) -> int:
    """The HTTP status the API answers a domain error with."""
    return STATUS_OF_CODE.get(exc.code, status.HTTP_401_UNAUTHORIZED)


def to_api_exception(exc: TokenServiceError) -> exceptions.APIException:
    """The API error for a domain error; 401s are AuthenticationFailed so DRF adds the challenge."""
    code = status_of(exc)
    if code == status.HTTP_401_UNAUTHORIZED:
        return exceptions.AuthenticationFailed(detail=str(exc), code=exc.code)
    if isinstance(exc, LoginThrottled):
        return exceptions.Throttled(wait=exc.wait, detail=str(exc), code=exc.code)
    if isinstance(exc, PasswordRejected):
        return exceptions.ValidationError({exc.field: exc.messages})
    if isinstance(exc, WrongPassword):
        return exceptions.ValidationError({exc.field: [str(exc)]})
    api_exc = exceptions.APIException(detail=str(exc), code=exc.code)
    api_exc.status_code = code
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
