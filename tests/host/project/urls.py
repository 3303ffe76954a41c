"""The host's URLconf: the app mounted under a prefix of the host's choosing."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from people.views import WhoAmI

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("tokens.urls")),
    path("", include("tokens.site_urls")),
    path("whoami/", WhoAmI.as_view()),
]

if apps.is_installed("drf_spectacular"):  # the [docs] extra
    from drf_spectacular.views import SpectacularAPIView

    urlpatterns.append(path("schema/", SpectacularAPIView.as_view(), name="schema"))
