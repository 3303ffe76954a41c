"""The cookie-mode table (README, "Web frontends" and the API's cookie table), a row at a
time, for every cookie endpoint (login, refresh, logout, password change) and over plain
HTTP and HTTPS: the CSRF header and the Origin are checked on each, and a refused request
changes nothing; which answers expire the cookie and which keep it; its Max-Age follows the
session's remaining lifetime; its attributes."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import (NEW_PASSWORD, PASSWORD, SESSIONS, assert_error, claims_of,
                           session_record, unreachable_caches)
from tokens.api.clients import DEVICE_COOKIE, SECURE_DEVICE_COOKIE
from tokens.api.cookies import PLAIN_COOKIE, SECURE_COOKIE, cookie_path
from tokens.models import SecurityEvent

pytestmark = pytest.mark.django_db

LOGIN, REFRESH, LOGOUT, PASSWORD_URL = (
    "/api/auth/cookie/token/", "/api/auth/cookie/refresh/", "/api/auth/cookie/logout/",
    "/api/auth/cookie/password/")
ENDPOINTS = {"login": LOGIN, "refresh": REFRESH, "logout": LOGOUT, "password": PASSWORD_URL}
APP = {"HTTP_X_REQUESTED_WITH": "app"}
SUCCESS = {LOGIN: 200, REFRESH: 200, LOGOUT: 204, PASSWORD_URL: 200}
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


@dataclass(frozen=True)
class Scheme:
    """How the site is served: the refresh cookie's name and path, the request's extras."""

    https: bool

    @property
    def name(self) -> str:
        return SECURE_COOKIE if self.https else PLAIN_COOKIE

    @property
    def other_name(self) -> str:
        return PLAIN_COOKIE if self.https else SECURE_COOKIE

    @property
    def path(self) -> str:
        return "/" if self.https else cookie_path()

    @property
    def own_origin(self) -> str:
        return "https://testserver" if self.https else "http://testserver"

    @property
    def extra(self) -> dict:
        return {"secure": True} if self.https else {}


@pytest.fixture(params=["http", "https"])
def scheme(request, settings) -> Scheme:
    """Plain HTTP (development), and HTTPS with DJANGO_HTTPS=1 (SESSION_COOKIE_SECURE)."""
    settings.SESSION_COOKIE_SECURE = request.param == "https"
    return Scheme(https=request.param == "https")


@dataclass
class Tab:
    """A browser tab of the app, logged in in cookie mode: its client (with the cookie jar)
    and the access token it keeps in memory."""

    client: APIClient
    access: str
    scheme: Scheme

    @property
    def cookie(self) -> str:
        return self.client.cookies[self.scheme.name].value

    def send(self, endpoint: str, headers: dict | None = None, **body):
        """POST to a cookie endpoint as the app does (with `headers` instead of its own):
        the credentials to the login, the passwords and the Bearer to the change."""
        extra = {**self.scheme.extra, **(APP if headers is None else headers)}
        if endpoint == LOGIN:
            body = {"username": "alice", "password": PASSWORD, **body}
        elif endpoint == PASSWORD_URL:
            body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD, **body}
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.access}"
        response = self.client.post(endpoint, body or None, format="json", **extra)
        if response.status_code == 200:
            self.access = response.json()["access_token"]
        return response


def log_in(scheme: Scheme) -> Tab:
    tab = Tab(APIClient(), "", scheme)
    response = tab.send(LOGIN)
    assert response.status_code == 200, response.content
    return tab


def redis_state(redis_conn) -> dict:
    """Every key in Redis with its value: to show that a request changed nothing."""
    state = {}
    for key in redis_conn.scan_iter(count=1000):
        kind = redis_conn.type(key)
        state[key] = {b"hash": redis_conn.hgetall, b"set": redis_conn.smembers,
                      b"zset": lambda k: redis_conn.zrange(k, 0, -1, withscores=True),
                      b"string": redis_conn.get}[kind](key)
    return state


def refresh_cookies(response) -> dict:
    """The refresh cookies the response sets, by either name."""
    return {name: morsel for name, morsel in response.cookies.items()
            if name in (PLAIN_COOKIE, SECURE_COOKIE)}


def assert_cookie(response, scheme: Scheme, *, expired: bool) -> None:
    """The response sets the refresh cookie (or expires it) with every attribute the README
    names, under the scheme's name only: an expiry must match the cookie's name and path,
    or the browser keeps the live one."""
    cookies = refresh_cookies(response)
    assert set(cookies) == {scheme.name}, cookies
    cookie = cookies[scheme.name]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == scheme.path
    assert cookie["domain"] == ""
    assert bool(cookie["secure"]) is scheme.https
    if expired:
        assert cookie.value == "" and cookie["max-age"] == 0 and cookie["expires"] == EPOCH
    else:
        assert cookie.value and int(cookie["max-age"]) > 0


def assert_kept(response) -> None:
    """The response leaves the browser's refresh cookie as it is: no Set-Cookie for it."""
    assert refresh_cookies(response) == {}, response.cookies


# --- CSRF: the header on every cookie endpoint, the Origin when sent ---

def refused_headers(scheme: Scheme) -> dict:
    other_scheme = "http" if scheme.https else "https"
    return {
        "no header": {},
        "an empty header": {"HTTP_X_REQUESTED_WITH": ""},
        "another site": {**APP, "HTTP_ORIGIN": "https://evil.example"},
        "null": {**APP, "HTTP_ORIGIN": "null"},
        "a lookalike host": {**APP, "HTTP_ORIGIN": f"{scheme.own_origin}.evil.example"},
        "a path": {**APP, "HTTP_ORIGIN": f"{scheme.own_origin}/app"},
        "another port": {**APP, "HTTP_ORIGIN": f"{scheme.own_origin}:8443"},
        "another scheme": {**APP, "HTTP_ORIGIN": f"{other_scheme}://testserver"},
    }


REFUSALS = list(refused_headers(Scheme(https=False)))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_request_not_from_the_app_is_refused_on_every_cookie_endpoint_and_changes_nothing(
        scheme, user, redis_conn, endpoint, refusal):
    tab = log_in(scheme)
    before = redis_state(redis_conn)
    response = tab.send(ENDPOINTS[endpoint], refused_headers(scheme)[refusal])
    assert_error(response, 403, "csrf_failed")
    # Nothing changed: no session started, rotated or ended, no attempt counted, no
    # password changed, no cookie set (neither the refresh cookie nor a device cookie).
    assert redis_state(redis_conn) == before
    assert not response.cookies
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not SecurityEvent.objects.exists()
    # The same request from the app goes through.
    assert tab.send(ENDPOINTS[endpoint]).status_code == SUCCESS[ENDPOINTS[endpoint]]


ORIGINS = {
    "none sent": None,
    "its own": "{own}",
    "its own, capitals and the default port": "{own_upper}",
    "a CORS-allowed one": "https://app.example.com",
    "a trusted one": "https://trusted.example.com:8443",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("origin", ORIGINS)
@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"],
                   CSRF_TRUSTED_ORIGINS=["https://trusted.example.com:8443"])
def test_the_sites_own_and_the_listed_origins_are_allowed_on_every_cookie_endpoint(
        scheme, user, endpoint, origin):
    tab = log_in(scheme)
    own = scheme.own_origin
    port = 443 if scheme.https else 80
    value = ORIGINS[origin]
    headers = dict(APP)
    if value is not None:
        headers["HTTP_ORIGIN"] = value.format(own=own, own_upper=f"{own.upper()}:{port}")
    response = tab.send(ENDPOINTS[endpoint], headers)
    assert response.status_code == SUCCESS[ENDPOINTS[endpoint]], response.content


ODD_ORIGINS = {
    "null": "null",
    "no host": "http://",
    "a scheme with no default port": "ftp://testserver:21",
    "an IPv6 host that spells a trusted host and port": "http://[::1:8000]",
}


@pytest.mark.parametrize("origin", ODD_ORIGINS)
@override_settings(CSRF_TRUSTED_ORIGINS=["http://[::1]:8000", "https://app.example.com/app"])
def test_odd_origins_are_refused_beside_a_trusted_entry_that_is_no_origin(
        user, redis_conn, origin):
    # A listed entry that is no origin (it has a path) matches nothing: not a `null` or
    # unreadable Origin either, each a 403 and never a 500. An IPv6 host keeps its brackets,
    # so [::1:8000] is not [::1] on port 8000.
    tab = log_in(Scheme(https=False))
    before = redis_state(redis_conn)
    response = tab.send(REFRESH, {**APP, "HTTP_ORIGIN": ODD_ORIGINS[origin]})
    assert_error(response, 403, "csrf_failed")
    assert redis_state(redis_conn) == before


@override_settings(CSRF_TRUSTED_ORIGINS=["https://app.example.com/", "http://[::1]:8000"])
def test_a_trusted_origin_written_with_a_slash_and_an_ipv6_one_are_allowed(user):
    tab = log_in(Scheme(https=False))
    for origin in ("https://app.example.com", "http://[::1]:8000"):
        response = tab.send(REFRESH, {**APP, "HTTP_ORIGIN": origin})
        assert response.status_code == 200, (origin, response.content)


# --- Which answers expire the cookie, and which keep it ---

def logged_out_elsewhere(tab: Tab):
    """The session ended by the user's other device (DELETE of this session)."""
    sid = claims_of(tab.access)["sid"]
    assert APIClient().delete(f"{SESSIONS}{sid}/", HTTP_AUTHORIZATION=f"Bearer {tab.access}",
                              **tab.scheme.extra).status_code == 204
    return tab.send(REFRESH)


def spent_cookie(tab: Tab, endpoint: str):
    """The cookie rotated by another tab, presented after the leeway by a tab that kept it."""
    spent = tab.cookie
    assert tab.send(REFRESH).status_code == 200
    late = Tab(APIClient(), tab.access, tab.scheme)
    late.client.cookies[tab.scheme.name] = spent
    with time_machine.travel(timedelta(seconds=11)):
        return late.send(endpoint)


def expired_token(tab: Tab):
    with time_machine.travel(timedelta(days=31)):  # REFRESH_TOKEN_LIFETIME: 30 days
        return tab.send(REFRESH)


def inactive_user(tab: Tab):
    # Deactivated by a path that sends no signal, so the session is still stored.
    from accounts.models import User

    User.objects.filter(username="alice").update(is_active=False)
    return tab.send(REFRESH)


def cookie_sent_twice(tab: Tab, endpoint: str):
    name = tab.scheme.name
    header = f"{name}={tab.cookie}; {name}=tossed"
    return APIClient().post(endpoint, HTTP_COOKIE=header, **tab.scheme.extra, **APP)


def store_down(tab: Tab, endpoint: str):
    with override_settings(CACHES=unreachable_caches()):
        return tab.send(endpoint)


def garbage_cookie(tab: Tab, endpoint: str):
    tab.client.cookies[tab.scheme.name] = "garbage"
    return tab.send(endpoint)


def logout_twice(tab: Tab):
    assert tab.send(LOGOUT).status_code == 204
    return tab.send(LOGOUT)


def change_with_an_ended_sessions_token(tab: Tab):
    assert APIClient().post("/api/auth/logout-all/", HTTP_AUTHORIZATION=f"Bearer {tab.access}",
                            **tab.scheme.extra).status_code == 204
    return tab.send(PASSWORD_URL)


def change_with_an_expired_access_token(tab: Tab):
    # The app refreshes and retries: its cookie, still good, must be left alone.
    with time_machine.travel(timedelta(minutes=6)):  # ACCESS_TOKEN_LIFETIME: 5 minutes
        return tab.send(PASSWORD_URL)


def over_the_limit(tab: Tab):
    for _ in range(5):
        assert tab.send(LOGIN, password="wrong").status_code == 401
    return tab.send(LOGIN)


# name: (how, status, code, whether the cookie is expired)
ROWS = {
    "logout": (lambda tab: tab.send(LOGOUT), 204, None, True),
    "logout again": (logout_twice, 204, None, True),
    "logout with a garbage cookie": (lambda tab: garbage_cookie(tab, LOGOUT), 204, None, True),
    "logout with a spent cookie": (lambda tab: spent_cookie(tab, LOGOUT), 204, None, True),
    "refresh: token_reused": (lambda tab: spent_cookie(tab, REFRESH), 401, "token_reused",
                              True),
    "refresh: token_expired": (expired_token, 401, "token_expired", True),
    "refresh: user_inactive": (inactive_user, 401, "user_inactive", True),
    "refresh: token_invalid": (lambda tab: garbage_cookie(tab, REFRESH), 401, "token_invalid",
                               False),
    "refresh: session_revoked": (logged_out_elsewhere, 401, "session_revoked", False),
    "refresh: cookie sent twice": (lambda tab: cookie_sent_twice(tab, REFRESH), 400,
                                   "invalid", False),
    "logout: cookie sent twice": (lambda tab: cookie_sent_twice(tab, LOGOUT), 400, "invalid",
                                  False),
    "refresh: 503": (lambda tab: store_down(tab, REFRESH), 503, "token_store_unavailable",
                     False),
    "logout: 503": (lambda tab: store_down(tab, LOGOUT), 503, "token_store_unavailable", False),
    "login: 503": (lambda tab: store_down(tab, LOGIN), 503, "token_store_unavailable", False),
    "password: 503": (lambda tab: store_down(tab, PASSWORD_URL), 503, "token_store_unavailable",
                      False),
    "login: wrong password": (lambda tab: tab.send(LOGIN, password="wrong"), 401,
                              "invalid_credentials", False),
    "login: no password": (lambda tab: tab.send(LOGIN, password=""), 400, "invalid", False),
    "login: over the limit": (over_the_limit, 429, "throttled", False),
    "password: an ended session's token": (change_with_an_ended_sessions_token, 401,
                                           "session_revoked", False),
    "password: an expired access token": (change_with_an_expired_access_token, 401,
                                          "token_expired", False),
    "password: wrong old password": (lambda tab: tab.send(PASSWORD_URL, old_password="wrong"),
                                     400, "invalid", False),
    "password: a weak new one": (lambda tab: tab.send(PASSWORD_URL, new_password="123"), 400,
                                 "invalid", False),
}


@pytest.mark.parametrize("row", ROWS)
def test_which_answers_expire_the_cookie_and_which_keep_it(scheme, user, row):
    how, status, code, expired = ROWS[row]
    response = how(log_in(scheme))
    if code is None:
        assert response.status_code == status, response.content
    else:
        assert_error(response, status, code)
    if expired:
        assert_cookie(response, scheme, expired=True)
    else:
        assert_kept(response)


# --- Max-Age: the session's remaining lifetime, after a login, a refresh, a change ---

def stored_expiry(redis_conn, tab: Tab) -> int:
    """When the tab's session ends as the store holds it (epoch seconds)."""
    return int(session_record(redis_conn, tab.cookie)["exp"])


def test_max_age_follows_the_sessions_remaining_lifetime(scheme, user, redis_conn, settings):
    # An absolute lifetime of 40 days against the idle 30: from day 10 on, the session's
    # end is its absolute one, nearer every day, whatever its refreshes.
    settings.TOKENS = {**settings.TOKENS, "SESSION_MAX_LIFETIME": timedelta(days=40)}
    start = datetime.now(tz=timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    day = 86400
    with time_machine.travel(start, tick=False) as clock:
        tab = Tab(APIClient(), "", scheme)
        # (what, on which day, the session's remaining lifetime then)
        for what, days, remaining in [(LOGIN, 0, 30 * day), (REFRESH, 20, 20 * day),
                                      (PASSWORD_URL, 30, 10 * day), (REFRESH, 35, 5 * day)]:
            clock.move_to(start + timedelta(days=days))
            if what == PASSWORD_URL:  # with a fresh access token, as the app would
                assert tab.send(REFRESH).status_code == 200
            response = tab.send(what)
            assert response.status_code == 200, (what, response.content)
            assert_cookie(response, scheme, expired=False)
            max_age = int(refresh_cookies(response)[scheme.name]["max-age"])
            now = int(start.timestamp()) + days * day
            assert max_age == response.json()["refresh_expires_in"] == remaining, what
            assert max_age == stored_expiry(redis_conn, tab) - now, what


# --- The cookie's attributes, on every answer that sets it ---

@pytest.mark.parametrize("endpoint", ["login", "refresh", "password"])
def test_every_cookie_set_has_the_attributes_of_the_table(scheme, user, endpoint):
    tab = log_in(scheme) if endpoint != "login" else Tab(APIClient(), "", scheme)
    response = tab.send(ENDPOINTS[endpoint])
    assert response.status_code == 200, response.content
    assert_cookie(response, scheme, expired=False)
    assert "refresh_token" not in response.json()
    # The cookie set is the session's current refresh token: the next refresh spends it.
    assert claims_of(tab.cookie)["sid"] == claims_of(tab.access)["sid"]
    assert tab.send(REFRESH).status_code == 200
    if endpoint == "login":
        # The device cookie beside it is the login limits', under its own name.
        assert set(response.cookies) == {scheme.name,
                                         SECURE_DEVICE_COOKIE if scheme.https else DEVICE_COOKIE}
