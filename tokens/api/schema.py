"""The API's OpenAPI description, by drf-spectacular (the [docs] extra): the Bearer
scheme's extension (loaded by TokensConfig.ready), and the vocabulary the views and
serializers describe themselves with, which without drf-spectacular describes nothing and
leaves them as they are."""

try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension
    from drf_spectacular.plumbing import build_bearer_security_scheme_object
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
        extend_schema_field,
        extend_schema_view,
    )
except ImportError:  # the [docs] extra is not installed
    OpenApiAuthenticationExtension = None

    class OpenApiTypes:
        STR = OBJECT = None

    class OpenApiParameter:
        HEADER, COOKIE = "header", "cookie"

        def __init__(self, *args, **kwargs) -> None:
            pass

    class OpenApiResponse(OpenApiParameter):
        pass

    def extend_schema(*args, **kwargs):
        return lambda described: described

    extend_schema_field = extend_schema_view = extend_schema

INSTALLED = OpenApiAuthenticationExtension is not None

if INSTALLED:
    class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
        target_class = "tokens.api.authentication.BearerAuthentication"
        name = "bearerAuth"

        def get_security_definition(self, auto_schema):
            return build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix="Bearer", bearer_format="JWT"
            )
