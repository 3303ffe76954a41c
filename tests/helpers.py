"""Helpers the tests share: the test password, API calls and assertions, cache settings."""

import copy

from django.conf import settings

from tests.servers import refused_port

PASSWORD = "correct horse battery staple"
OBTAIN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
LOGOUT = "/api/auth/logout/"
LOGOUT_ALL = "/api/auth/logout-all/"
SESSIONS = "/api/auth/sessions/"
ME = "/api/auth/me/"


def refresh(api, token):
    return api.post(REFRESH, {"refresh_token": token}, format="json")


def me(api, access):
    return api.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"detail", "code"} and isinstance(body["detail"], str)
    assert body["code"] == code
    if status == 401:  # the README: every 401 carries the Bearer challenge
        assert response.get("WWW-Authenticate", "").startswith("Bearer"), response.headers


def caches_at(location: str) -> dict:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = location
    return caches


def unreachable_caches() -> dict:
    """CACHES pointing the token cache at a loopback port that refuses connections."""
    return caches_at(f"redis://127.0.0.1:{refused_port()}/0")
