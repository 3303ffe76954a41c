"""What the views' OpenAPI descriptions share: the error answers and the request headers."""

from tokens.api import cookies
from tokens.api.clients import IDEMPOTENCY_KEY_PATTERN
from tokens.api.schema import OpenApiParameter, OpenApiResponse, OpenApiTypes
from tokens.api.serializers import ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer)
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


# Cookie mode's: the CSRF header, and the cookie itself.
CSRF_PARAMETER = OpenApiParameter(
    cookies.CSRF_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
    description="Any value: proves the request came from the app (CSRF defence; browsers "
                "send a custom header cross-origin only after a CORS preflight).",
)
COOKIE_PARAMETER = OpenApiParameter(
    cookies.PLAIN_COOKIE, OpenApiTypes.STR, OpenApiParameter.COOKIE,
    description="The refresh token, set by the cookie-mode login: HttpOnly, SameSite=Strict; "
                f"named {cookies.SECURE_COOKIE} (Path=/) over HTTPS, {cookies.PLAIN_COOKIE} "
                "(Path: the cookie endpoints' folder) otherwise. The body is not read.",
)
