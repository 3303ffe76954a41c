"""Cookie mode for browsers: the refresh token in an HttpOnly, SameSite=Strict cookie scoped to
/api/auth/cookie/, the CSRF header those endpoints require, and CORS for allowed origins."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import PASSWORD, assert_error, claims_of, session_keys, session_record
from tests.helpers import unreachable_caches
from tokens.api.cookies import COOKIE_PATH, SECURE_COOKIE
from tokens.api.cookies import PLAIN_COOKIE as COOKIE

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
def test_over_https_the_cookie_is_a_host_cookie_no_sibling_site_can_shadow(browser, user):
    response = log_in(browser, secure=True)
    cookie = response.cookies[SECURE_COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/" and not cookie["domain"]
    assert COOKIE not in response.cookies
    refreshed = browser.post(REFRESH, secure=True, **APP)
    assert refreshed.status_code == 200 and refreshed.cookies[SECURE_COOKIE].value


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
    assert_error(browser.post(REFRESH, **APP), 401, "token_reused")


@pytest.mark.parametrize("cookie", [None, "", "garbage", "x" * 5000, "a.b.c"])
def test_a_missing_or_bad_cookie_is_token_invalid(browser, user, cookie):
    if cookie is not None:
        browser.cookies[COOKIE] = cookie
    response = browser.post(REFRESH, **APP)
    assert_error(response, 401, "token_invalid")
    # Not expired: a garbage cookie tossed by a sibling site must not delete a live one.
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("order", ["tossed last", "tossed first"])
def test_a_cookie_sent_twice_is_refused_and_neither_is_used(browser, user, redis_conn, order):
    good = log_in(browser).cookies[COOKIE].value
    pair = [f"{COOKIE}={good}", f"{COOKIE}=garbage"]
    header = "; ".join(pair if order == "tossed last" else pair[::-1])
    for endpoint in (REFRESH, LOGOUT):
        response = APIClient().post(endpoint, HTTP_COOKIE=header, **APP)
        assert_error(response, 400, "invalid")
        assert COOKIE not in response.cookies
    assert session_record(redis_conn, good)["cur"] == jti(good)  # not rotated, not ended


@pytest.mark.parametrize("secure, name", [(False, COOKIE), (True, SECURE_COOKIE)])
@pytest.mark.parametrize("spelling", ["{name} =garbage", " {name}\t=garbage", "{name}  = x",
                                      "\xa0{name}=garbage", "{name}=", "{name} ="])
def test_any_spelling_of_a_second_cookie_is_refused(browser, user, redis_conn, secure, name,
                                                    spelling):
    # Django strips the names it parses, so `tokens_refresh =x` is the same cookie to it; the
    # duplicate check read it as another name, and the last one sent was used.
    with override_settings(SESSION_COOKIE_SECURE=secure):
        good = log_in(browser, secure=secure).cookies[name].value
        header = f"{name}={good}; {spelling.format(name=name)}"
        for endpoint in (REFRESH, LOGOUT):
            response = APIClient().post(endpoint, HTTP_COOKIE=header, secure=secure, **APP)
            assert_error(response, 400, "invalid")
            assert name not in response.cookies
        assert session_record(redis_conn, good)["cur"] == jti(good)  # not rotated, not ended
        other = "tokens_refresh_old" if name == COOKIE else COOKIE  # another name: not counted
        response = APIClient().post(REFRESH, HTTP_COOKIE=f"{header.split(';')[0]}; {other}=x",
                                    secure=secure, **APP)
        assert response.status_code == 200


def test_a_late_reply_to_another_tab_does_not_delete_the_live_cookie(browser, user):
    # Tab A changes the password (its reply sets the new cookie); tab B's refresh with the
    # old cookie is answered after: session_revoked, and the browser's cookie must survive.
    first = log_in(browser)
    old_cookie = first.cookies[COOKIE].value
    changed = browser.post(PASSWORD_URL, {"old_password": PASSWORD,
                                          "new_password": "a much better passphrase 42"},
                           format="json",
                           HTTP_AUTHORIZATION=f"Bearer {first.json()['access_token']}", **APP)
    assert changed.status_code == 200
    tab_b = APIClient()
    tab_b.cookies[COOKIE] = old_cookie
    late = tab_b.post(REFRESH, **APP)
    assert_error(late, 401, "session_revoked")
    assert COOKIE not in late.cookies
    assert browser.post(REFRESH, **APP).status_code == 200


def test_an_expired_token_expires_the_cookie(browser, user):
    import time_machine
    from datetime import timedelta

    log_in(browser)
    with time_machine.travel(timedelta(days=31)):
        response = browser.post(REFRESH, **APP)
    assert_error(response, 401, "token_expired")
    assert response.cookies[COOKIE].value == "" and response.cookies[COOKIE]["max-age"] == 0


def test_an_outage_keeps_the_cookie(browser, user):
    log_in(browser)
    with override_settings(CACHES=unreachable_caches()):
        for endpoint in (REFRESH, LOGOUT):
            response = browser.post(endpoint, **APP)
            assert_error(response, 503, "token_store_unavailable")
            assert COOKIE not in response.cookies
    assert browser.post(REFRESH, **APP).status_code == 200


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
    {**APP, "HTTP_ORIGIN": "http://testserver.evil.example"},
    {**APP, "HTTP_ORIGIN": "http://testserver/path"},
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
    assert browser.post(REFRESH, HTTP_ORIGIN="HTTP://TESTSERVER:80", **APP).status_code == 200


@override_settings(ALLOWED_HOSTS=["127.0.0.1"], CSRF_TRUSTED_ORIGINS=["https://app.example.com"])
def test_behind_a_proxy_that_rewrites_host_the_sites_origin_is_trusted_by_setting(browser,
                                                                                 user):
    # nginx's default passes Host: 127.0.0.1:8000; the browser says Origin: the real site.
    headers = {**APP, "HTTP_HOST": "127.0.0.1", "HTTP_ORIGIN": "https://app.example.com:443"}
    assert browser.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json",
                        **headers).status_code == 200
    assert browser.post(REFRESH, **headers).status_code == 200


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
