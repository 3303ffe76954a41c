"""Error pages: JSON `{"detail", "code"}` under /api/, Django's own pages elsewhere."""

from django.core.exceptions import RequestDataTooBig
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from tokens import metrics
from tokens.api.clients import client_ip
from tokens.conf import token_settings

API_PREFIX = "/api/"


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """What Django refuses before a view runs: a bad Host header, a body over the size limit."""
    if not request.path.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _api_error(413, "request_too_large", "Request body is too large.")
    return _api_error(400, "bad_request", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        detail = "You do not have permission to perform this action."
        return _api_error(403, "permission_denied", detail)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(500, "server_error", "Server error.")
    return defaults.server_error(request)


def _api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


class PublicPage:
    """A public page under /api/ (the docs, the schema), for GET and HEAD; errors in JSON."""

    # No authenticators: a Bearer header is never evaluated here, so an invalid token is no
    # 401 and an unreachable token store no 503 (nor a 500, from the template's `auth`
    # context processor authenticating again). Set here, not in settings: a host project's
    # REST_FRAMEWORK defaults change nothing.
    authentication_classes = ()
    permission_classes = (AllowAny,)
    # Anything else is a 405. DRF's OPTIONS answer would render its metadata through the
    # page's own renderer (a 500 from the template renderer, YAML from the schema's).
    http_method_names = ["get", "head"]

    def handle_exception(self, exc: Exception) -> Response:
        # The page renders HTML or YAML; an error (405, 406, an unknown ?format=) is the
        # API's JSON `{"detail", "code"}` like every other error under /api/.
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SwaggerView(PublicPage, SpectacularSwaggerView):
    """The Swagger UI page."""


class SchemaView(PublicPage, SpectacularAPIView):
    """The OpenAPI schema, YAML or JSON (`?format=json`, or by the Accept header)."""

    def _get_version_parameter(self, request: Request) -> None:
        # One version of the API: a client's `?version=` never reaches the schema or its
        # Content-Disposition header (where a newline in it was a 500).
        return None


@require_safe
def metrics_page(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for the addresses or the bearer secret configured (README,
    "Metrics"); a 404 when neither is, a 403 for anyone else."""
    access = metrics.scrape_access(ip_address=client_ip(request),
                                   authorization=request.META.get("HTTP_AUTHORIZATION", ""))
    if access == "off":
        return _api_error(404, "not_found", "Not found.")
    if access != "allowed":
        return _api_error(403, "permission_denied",
                          "You do not have permission to perform this action.")
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@require_safe
def demo_page(request: HttpRequest) -> HttpResponse:
    """The browser client's demo page: with DEBUG, or when TOKENS["DEMO_PAGE"] is on."""
    if not (settings.DEBUG or token_settings.DEMO_PAGE):
        raise Http404
    return render(request, "tokens/demo.html")
