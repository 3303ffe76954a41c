"""The app's contract does not come from this project's settings (INVARIANTS 14): under a
host's own exception handler, date format, time zone and URLconf its answers stay the same.
(Defaults DRF reads once at import, such as the authentication, parser, renderer and
throttle classes, are tried by tests/host, in a host project of their own.)"""

from datetime import datetime

import pytest
from django.conf import settings
from django.test import override_settings

from tests.helpers import OBTAIN, PASSWORD, SESSIONS, assert_error
from tokens import metrics

pytestmark = pytest.mark.django_db

ELSEWHERE = "/accounts/session-api/"  # where tests/tokens/urls_elsewhere.py mounts the API


def host_exception_handler(exc, context):
    """A host's handler: its own error shape, and no idea of the app's domain errors."""
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": str(exc)}
    return response


def host_rest_framework(**overrides) -> dict:
    return {**settings.REST_FRAMEWORK, **overrides}


@override_settings(REST_FRAMEWORK=host_rest_framework(
    EXCEPTION_HANDLER="tests.tokens.test_host_contract.host_exception_handler"))
def test_the_hosts_exception_handler_changes_no_error_of_the_app(api, user):
    assert_error(api.post(OBTAIN, {"username": user.username, "password": "wrong"},
                          format="json"), 401, "invalid_credentials")
    assert_error(api.post(OBTAIN, {}, format="json"), 400, "invalid")
    assert_error(api.get(SESSIONS), 401, "not_authenticated")
    assert_error(api.post("/api/auth/token/refresh/", {"refresh_token": "junk"},
                          format="json"), 401, "token_invalid")


@override_settings(TIME_ZONE="Europe/Paris", REST_FRAMEWORK=host_rest_framework(
    DATETIME_FORMAT="%d/%m/%Y %H:%M"))
def test_session_times_are_iso_8601_in_utc_whatever_the_hosts_format(api, user, login):
    pair = login(user)
    (session,) = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}").json()
    for name in ("created_at", "last_used_at", "expires_at"):
        assert session[name].endswith("Z"), session
        datetime.fromisoformat(session[name])


@override_settings(ROOT_URLCONF="tests.tokens.urls_elsewhere")
def test_the_cookie_is_scoped_to_where_the_host_mounted_the_api(api, user):
    reply = api.post(f"{ELSEWHERE}cookie/token/", {"username": user.username,
                     "password": PASSWORD}, format="json", HTTP_X_REQUESTED_WITH="fetch")
    assert reply.status_code == 200, reply.content
    assert reply.cookies["tokens_refresh"]["path"] == f"{ELSEWHERE}cookie/"
    logout = api.post(f"{ELSEWHERE}cookie/logout/", HTTP_X_REQUESTED_WITH="fetch")
    assert logout.status_code == 204
    expired = logout.cookies["tokens_refresh"]
    assert expired["path"] == f"{ELSEWHERE}cookie/" and expired["max-age"] == 0


@override_settings(ROOT_URLCONF="tests.tokens.urls_elsewhere", TOKENS={"DEMO_PAGE": True,
                   "METRICS_ALLOWED_IPS": ["127.0.0.1"]})
def test_the_app_brings_its_site_routes(client):
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json() == {"keys": []}
    assert client.get("/metrics").status_code == 200
    demo = client.get("/demo/")
    assert demo.status_code == 200
    # The page's client talks to the API where this URLconf put it.
    assert f'data-api-root="{ELSEWHERE}"'.encode() in demo.content


@override_settings(ROOT_URLCONF="tests.tokens.urls_elsewhere")
def test_the_demo_page_is_off_by_default(client):
    assert client.get("/demo/").status_code == 404


@override_settings(TOKENS={"METRICS_ALLOWED_IPS": ["127.0.0.1"]})
def test_without_prometheus_client_nothing_is_counted_and_metrics_are_a_404(
        api, user, login, client, monkeypatch):
    monkeypatch.setattr(metrics, "INSTALLED", False)  # as without the [metrics] extra
    monkeypatch.setattr(metrics, "LOGINS", {})  # a count would be a KeyError (a 500)
    login(user)
    assert_error(client.get("/metrics"), 404, "not_found")
