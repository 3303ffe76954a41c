from django.contrib import admin
from django.urls import include, path

from config.views import SchemaView, SwaggerView, demo_page, metrics_page
from tokens.api.views import JWKSView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("tokens.urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="docs"),
    path(".well-known/jwks.json", JWKSView.as_view(), name="well-known-jwks"),
    path("demo/", demo_page, name="demo"),
    path("metrics", metrics_page, name="metrics"),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
