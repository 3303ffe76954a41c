"""DRF authentication with `Authorization: Bearer <access token>`."""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from tokens import services
from tokens.api.clients import idempotency_key
from tokens.api.errors import status_of, to_api_exception
from tokens.exceptions import TokenInvalid, TokenServiceError

KEYWORD = b"bearer"


class BearerAuthentication(BaseAuthentication):
    """Accepts an access JWT; refuses it once its session is revoked (CHECK_SESSION_ON_ACCESS)."""

    def authenticate(self, request: Request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        try:
            if len(parts) != 2:
                raise TokenInvalid("Authorization header must be 'Bearer <token>'.")
            try:
                token = parts[1].decode("ascii")
            except UnicodeDecodeError:
                raise TokenInvalid() from None
            return services.authenticate_access(access_token=token, **self.retry_of(request))
        except TokenServiceError as exc:
            if status_of(exc) != 401:
                raise  # an outage is not an authentication failure: 503, via the handler
            raise to_api_exception(exc) from None

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"

    def retry_of(self, request: Request) -> dict:
        # A view with `accepts_change_retry` (the password change) also accepts the token of
        # a session from just before a password change it made, on a retry of that change
        # (same Idempotency-Key) whose reply was lost.
        view = (request.parser_context or {}).get("view")
        if getattr(view, "accepts_change_retry", False):
            try:
                return {"change_retry_key": idempotency_key(request)}
            except ValidationError:
                pass  # the view answers that (and an unsupported method a 405 first)
        return {}
