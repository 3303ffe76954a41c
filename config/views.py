"""Error pages: JSON `{"detail", "code"}` under /api/, Django's own pages elsewhere."""

from django.core.exceptions import RequestDataTooBig
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django.views import defaults
from drf_spectacular.views import SpectacularSwaggerView

from tokens import metrics
from tokens.clients import client_ip
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


class SwaggerView(SpectacularSwaggerView):
    """The Swagger UI page, for GET and HEAD only."""

    # The page renders one template, for GET. DRF's OPTIONS answer would go through the same
    # template renderer with no template name (a 500); anything but GET/HEAD is a 405 instead.
    http_method_names = ["get", "head"]


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
