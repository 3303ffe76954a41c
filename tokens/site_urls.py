"""The app's routes at the site's root, for `path("", include("tokens.site_urls"))`: the
JWKS at its well-known address, Prometheus metrics, and the demo page (behind
TOKENS["DEMO_PAGE"], or DEBUG). The API itself is tokens.urls, under any prefix."""

from django.urls import path

from tokens.api.pages import demo_page, metrics_page
from tokens.api.views import JWKSView

app_name = "tokens_site"

urlpatterns = [
    path(".well-known/jwks.json", JWKSView.as_view(), name="well-known-jwks"),
    path("metrics", metrics_page, name="metrics"),
    path("demo/", demo_page, name="demo"),
]
