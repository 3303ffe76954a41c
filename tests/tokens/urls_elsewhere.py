"""A host's URLconf, for tests/tokens/test_host_contract.py: the API under a prefix of its
own, the app's site routes at the root."""

from django.urls import include, path

urlpatterns = [
    path("accounts/session-api/", include("tokens.urls")),
    path("", include("tokens.site_urls")),
]
