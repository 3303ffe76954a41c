"""The app's pages outside its API prefix (tokens.site_urls): Prometheus metrics and the
browser client's demo page."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from tokens import metrics
from tokens.api.clients import client_ip
from tokens.api.cookies import folder_of
from tokens.conf import token_settings


@require_safe
def metrics_page(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for the addresses or the bearer secret configured (README,
    "Metrics"); a 404 when neither is (or without the [metrics] extra), a 403 for anyone
    else."""
    access = metrics.scrape_access(ip_address=client_ip(request),
                                   authorization=request.META.get("HTTP_AUTHORIZATION", ""))
    if access == "off":
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    if access != "allowed":
        return JsonResponse({"detail": "You do not have permission to perform this action.",
                             "code": "permission_denied"}, status=403)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@require_safe
def demo_page(request: HttpRequest) -> HttpResponse:
    """The browser client's demo page: with DEBUG, or when TOKENS["DEMO_PAGE"] is on; it
    talks to the API wherever the project mounted tokens.urls."""
    if not (settings.DEBUG or token_settings.DEMO_PAGE):
        raise Http404
    return render(request, "tokens/demo.html",
                  {"api_root": folder_of("tokens:obtain", "tokens:me")})
