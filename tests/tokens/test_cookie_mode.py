"""Cookie mode for browsers: the refresh token in an HttpOnly, SameSite=Strict cookie scoped to
/api/auth/cookie/, the CSRF header those endpoints require, and CORS for allowed origins."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import PASSWORD, assert_error, claims_of, session_keys, session_record
from tokens.cookies import COOKIE, COOKIE_PATH

pytestmark = pytest.mark.django_db

LOGIN, REFRESH, LOGOUT = "/api/auth/cookie/token/", "/api/auth/cookie/refresh/", "/api/auth/cookie/logout/"
PASSWORD_URL = "/api/auth/cookie/password/"
APP = {"HTTP_X_REQUESTED_WITH": "app"}
ORIGIN = "https://app.example.com"


@pytest.fixture
def browser():
    return APIClient()


def log_in(browser, **extra):
    response = browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json",
                            **{**APP, **extra})
    assert response.status_code == 200, response.content
    return response


def jti(token: str) -> str:
    return claims_of(token)["jti"]


def test_login_sets_the_refresh_cookie_and_keeps_it_out_of_the_body(browser, user):
    response = log_in(browser)
    body = response.json()
    assert "refresh_token" not in body and body["access_token"]
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert cookie["path"] == COOKIE_PATH
    assert int(cookie["max-age"]) == body["refresh_expires_in"]
    assert browser.get("/api/auth/me/",
                       HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == 200


@override_settings(SESSION_COOKIE_SECURE=True)  # what DJANGO_HTTPS=1 sets
def test_the_cookie_is_secure_when_https_is_on(browser, user):
    assert log_in(browser).cookies[COOKIE]["secure"]


def test_refresh_replaces_the_cookie_and_the_old_token_is_spent(browser, user, redis_conn):
    first = log_in(browser).cookies[COOKIE].value
    response = browser.post(REFRESH, **APP)
    assert response.status_code == 200 and "refresh_token" not in response.json()
    second = response.cookies[COOKIE].value
    assert second != first
    record = session_record(redis_conn, second)
    assert (record["cur"], record["prev"]) == (jti(second), jti(first))
    assert browser.post(REFRESH, **APP).status_code == 200  # with the new cookie


def test_a_replay_inside_the_leeway_sets_the_same_successor(browser, user):
    first = log_in(browser).cookies[COOKIE].value
    successor = browser.post(REFRESH, **APP).cookies[COOKIE].value
    other_tab = APIClient()
    other_tab.cookies[COOKIE] = first
    other_tab.cookies[COOKIE]["path"] = COOKIE_PATH
    assert other_tab.post(REFRESH, **APP).cookies[COOKIE].value == successor


def test_reuse_expires_the_cookie_and_ends_the_session(browser, user, redis_conn):
    import time_machine
    from datetime import timedelta

    first = log_in(browser).cookies[COOKIE].value
    browser.post(REFRESH, **APP)
    thief = APIClient()
    thief.cookies[COOKIE] = first
    with time_machine.travel(timedelta(seconds=11)):
        response = thief.post(REFRESH, **APP)
    assert_error(response, 401, "token_reused")
    assert response.cookies[COOKIE].value == "" and response.cookies[COOKIE]["max-age"] == 0
    assert session_keys(redis_conn) == []
    assert_error(browser.post(REFRESH, **APP), 401, "session_revoked")


@pytest.mark.parametrize("cookie", [None, "", "garbage", "x" * 5000, "a.b.c"])
def test_a_missing_or_bad_cookie_is_token_invalid_and_expired(browser, user, cookie):
    if cookie is not None:
        browser.cookies[COOKIE] = cookie
    response = browser.post(REFRESH, **APP)
    assert_error(response, 401, "token_invalid")
    assert response.cookies[COOKIE].value == ""


def test_a_duplicated_cookie_header_is_judged_like_any_token(browser, user):
    good = log_in(browser).cookies[COOKIE].value
    response = APIClient().post(REFRESH, HTTP_COOKIE=f"{COOKIE}=garbage; {COOKIE}={good}", **APP)
    assert response.status_code in (200, 401)
    assert response.status_code == 200 or response.json()["code"] == "token_invalid"


def test_the_body_is_never_read_in_cookie_mode(browser, user, login):
    body_pair = login(user)
    response = APIClient().post(REFRESH, {"refresh_token": body_pair["refresh_token"]},
                                format="json", **APP)
    assert_error(response, 401, "token_invalid")  # no cookie: the body token is ignored
    assert APIClient().post("/api/auth/token/refresh/",
                            {"refresh_token": body_pair["refresh_token"]},
                            format="json").status_code == 200


def test_logout_expires_the_cookie_ends_the_session_and_is_idempotent(browser, user, redis_conn):
    log_in(browser)
    for _ in range(2):
        response = browser.post(LOGOUT, **APP)
        assert response.status_code == 204
        assert response.cookies[COOKIE].value == ""
    assert session_keys(redis_conn) == []


def test_password_change_in_cookie_mode_replaces_the_cookie(browser, user):
    access = log_in(browser).json()["access_token"]
    response = browser.post(PASSWORD_URL, {"old_password": PASSWORD,
                                           "new_password": "a much better passphrase 42"},
                            format="json", HTTP_AUTHORIZATION=f"Bearer {access}", **APP)
    assert response.status_code == 200 and "refresh_token" not in response.json()
    assert browser.post(REFRESH, **APP).status_code == 200


# --- CSRF: a request that authenticates with the cookie must come from the app ---

@pytest.mark.parametrize("endpoint", [REFRESH, LOGOUT])
@pytest.mark.parametrize("headers", [
    {},  # a cross-site form post, or a fetch without the header
    {"HTTP_X_REQUESTED_WITH": ""},
    {**APP, "HTTP_ORIGIN": "https://evil.example"},
    {**APP, "HTTP_ORIGIN": "null"},
])
def test_a_cookie_request_not_from_the_app_is_refused_and_changes_nothing(
        browser, user, redis_conn, endpoint, headers):
    current = log_in(browser).cookies[COOKIE].value
    response = browser.post(endpoint, **headers)
    assert_error(response, 403, "csrf_failed")
    assert COOKIE not in response.cookies  # the cookie is kept
    assert session_record(redis_conn, current)["cur"] == jti(current)  # not rotated, not ended
    assert browser.post(REFRESH, **APP).status_code == 200


def test_a_form_encoded_cross_site_post_is_refused(browser, user, redis_conn):
    log_in(browser)
    response = browser.post(REFRESH, "a=1", content_type="application/x-www-form-urlencoded",
                            HTTP_ORIGIN="https://evil.example")
    assert_error(response, 403, "csrf_failed")
    assert len(session_keys(redis_conn)) == 1


def test_a_cookie_login_needs_the_header_too(browser, user, redis_conn):
    response = browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert_error(response, 403, "csrf_failed")
    assert session_keys(redis_conn) == [] and COOKIE not in response.cookies


def test_the_apps_own_origin_is_allowed(browser, user):
    log_in(browser, HTTP_ORIGIN="http://testserver")
    assert browser.post(REFRESH, HTTP_ORIGIN="http://testserver", **APP).status_code == 200


# --- CORS: only for the configured origins, only under /api/ ---

def preflight(client, path, origin):
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-requested-with")


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_an_allowed_origin_passes_the_preflight_with_credentials(browser, user):
    response = preflight(browser, REFRESH, ORIGIN)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "x-requested-with" in response["Access-Control-Allow-Headers"]
    log_in(browser, HTTP_ORIGIN=ORIGIN)
    refreshed = browser.post(REFRESH, HTTP_ORIGIN=ORIGIN, **APP)
    assert refreshed.status_code == 200 and refreshed["Access-Control-Allow-Origin"] == ORIGIN


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_another_origin_gets_no_cors_headers(browser, user):
    for path in (REFRESH, "/api/auth/token/"):
        response = preflight(browser, path, "https://evil.example")
        assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in preflight(browser, "/admin/login/", ORIGIN)


def test_no_origin_is_allowed_by_default(browser, user):
    assert "Access-Control-Allow-Origin" not in preflight(browser, REFRESH, ORIGIN)
