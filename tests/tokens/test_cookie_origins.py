"""The cookie endpoints' Origin check keeps the port: a development server on :8000 (the
site's own origin, or a listed one) is allowed, and any other port of the same host refused
(403 csrf_failed, nothing changed), on every cookie endpoint."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import PASSWORD, assert_error, claims_of, session_record
from tokens.api.cookies import PLAIN_COOKIE as COOKIE

pytestmark = pytest.mark.django_db

LOGIN, REFRESH, LOGOUT = ("/api/auth/cookie/token/", "/api/auth/cookie/refresh/",
                          "/api/auth/cookie/logout/")
PASSWORD_URL = "/api/auth/cookie/password/"
APP = {"HTTP_X_REQUESTED_WITH": "app"}
DEV = "http://localhost:8000"
SPELLINGS = [DEV, "HTTP://LOCALHOST:8000", "http://localhost:8000/"]
OTHERS = ["http://localhost:8001", "http://localhost", "http://localhost:80",
          "https://localhost:8000", "http://localhost:80000", "http://localhost:0x1f40",
          "http://localhost:8000.evil.example"]
# The site served on :8000 itself (Host carries the port), or listed as a frontend's origin.
WHERE = {"own": ({"HTTP_HOST": "localhost:8000"}, {}),
         "listed": ({}, {"CORS_ALLOWED_ORIGINS": [DEV]})}


@pytest.fixture(params=sorted(WHERE))
def site(request):
    host, listed = WHERE[request.param]
    with override_settings(**listed):
        yield host


def logged_in(host: dict) -> tuple[APIClient, dict]:
    browser = APIClient()
    response = browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json",
                            **APP, **host)
    assert response.status_code == 200, response.content
    return browser, response.json()


@pytest.mark.parametrize("origin", SPELLINGS)
def test_the_origin_on_its_own_port_is_allowed(site, user, redis_conn, origin):
    browser, pair = logged_in(site)
    spent = browser.cookies[COOKIE].value
    headers = {**APP, **site, "HTTP_ORIGIN": origin}
    response = browser.post(REFRESH, **headers)
    assert response.status_code == 200, response.content
    assert session_record(redis_conn, spent)["prev"] == claims_of(spent)["jti"]
    assert browser.post(LOGOUT, **headers).status_code == 204
    assert session_record(redis_conn, spent) == {}


@pytest.mark.parametrize("origin", OTHERS)
def test_another_port_or_scheme_of_the_host_is_refused_on_every_cookie_endpoint(site, user,
                                                                              redis_conn,
                                                                              origin):
    browser, pair = logged_in(site)
    token = browser.cookies[COOKIE].value
    stored = session_record(redis_conn, token)
    headers = {**APP, **site, "HTTP_ORIGIN": origin}
    replies = [
        browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json",
                     **headers),
        browser.post(REFRESH, **headers),
        browser.post(LOGOUT, **headers),
        browser.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": "a new one 42"},
                     format="json", HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}",
                     **headers),
    ]
    for reply in replies:
        assert_error(reply, 403, "csrf_failed")
        assert COOKIE not in reply.cookies  # neither replaced nor expired
    assert session_record(redis_conn, token) == stored  # nothing rotated, nothing ended
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
