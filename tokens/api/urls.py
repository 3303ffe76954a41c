from django.urls import path, re_path

from tokens.api import views

app_name = "tokens"

urlpatterns = [
    path("token/", views.ObtainTokenView.as_view(), name="obtain"),
    path("token/refresh/", views.RefreshTokenView.as_view(), name="refresh"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout-all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("password/", views.PasswordChangeView.as_view(), name="password"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password/reset/confirm/", views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
    path("sessions/", views.SessionListView.as_view(), name="sessions"),
    re_path(
        r"^sessions/(?P<session_id>[A-Za-z0-9_-]{1,64})/$",
        views.SessionDetailView.as_view(),
        name="session-detail",
    ),
    path("me/", views.MeView.as_view(), name="me"),
    path("jwks/", views.JWKSView.as_view(), name="jwks"),
    # Cookie mode (browsers): the refresh token in an HttpOnly cookie scoped to these paths.
    path("cookie/token/", views.CookieObtainTokenView.as_view(), name="cookie-obtain"),
    path("cookie/refresh/", views.CookieRefreshTokenView.as_view(), name="cookie-refresh"),
    path("cookie/logout/", views.CookieLogoutView.as_view(), name="cookie-logout"),
    path("cookie/password/", views.CookiePasswordChangeView.as_view(), name="cookie-password"),
]
