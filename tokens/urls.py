"""The app's URLconf, for `include("tokens.urls")`: the API's routes (tokens.api.urls)."""

from tokens.api.urls import app_name, urlpatterns  # noqa: F401
