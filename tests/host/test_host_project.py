"""The app keeps its contract in a project that is not this one (INVARIANTS 14): installed
from its wheel, in a project made by `django-admin startproject` whose user model logs in by
email or inherits across tables, whose DRF defaults (SessionAuthentication, IsAuthenticated,
form parsers, the browsable API, an anonymous throttle, a date format, its own exception
handler) are none of the app's, on PostgreSQL and on SQLite, with and without the extras."""

import re
import urllib.parse
from datetime import datetime

import jwt as pyjwt
import pytest

from tests.host.conftest import ADMIN, NEW_PASSWORD, PASSWORD, Client, Host, Reply
from tokens.conf import derived_key

pytestmark = pytest.mark.timeout(600)  # the first test of a host also builds it

PREFIX = "/auth/"  # where the host mounted tokens.urls
OBTAIN, REFRESH, LOGOUT, LOGOUT_ALL = (f"{PREFIX}token/", f"{PREFIX}token/refresh/",
                                       f"{PREFIX}logout/", f"{PREFIX}logout-all/")
SESSIONS, ME, PASSWORD_URL, JWKS = (f"{PREFIX}sessions/", f"{PREFIX}me/", f"{PREFIX}password/",
                                    f"{PREFIX}jwks/")
COOKIE = f"{PREFIX}cookie/"
FROM_THE_APP = {"X-Requested-With": "fetch"}


def assert_error(reply: Reply, status: int, code: str) -> None:
    """The app's error: its status, and its body `{"detail", "code"}` (not the host's)."""
    assert reply.status == status, reply
    body = reply.body
    assert isinstance(body, dict) and isinstance(body.get("detail"), str), reply
    assert body["code"] == code, reply
    if status == 401:
        assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer"), reply.headers


def login(client: Client, host: Host, name: str, password: str = PASSWORD) -> Reply:
    return client.call("POST", OBTAIN, {"username": host.login_name(name), "password": password})


def pair_of(client: Client, host: Host, name: str, password: str = PASSWORD) -> dict:
    reply = login(client, host, name, password)
    assert reply.status == 200, reply
    return reply.body


def refresh(client: Client, token: str) -> Reply:
    return client.call("POST", REFRESH, {"refresh_token": token})


def me(client: Client, access: str) -> Reply:
    return client.call("GET", ME, token=access)


def forged(host: Host, token: str, **claims) -> str:
    """The token re-signed with the host's own key and key id: only these claims differ."""
    header = pyjwt.get_unverified_header(token)
    payload = {**pyjwt.decode(token, options={"verify_signature": False}), **claims}
    key = derived_key(host.env["HOST_SECRET_KEY"])
    return pyjwt.encode(payload, key, algorithm=header["alg"], headers=header)


def admin_session(host: Host) -> Client:
    """A browser logged in to the host's admin (Django's session cookie)."""
    browser = host.client()
    page = browser.call("GET", "/admin/login/")
    assert page.status == 200, page
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.raw).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf.decode(), "next": "/admin/",
                                   "username": host.login_name(ADMIN), "password": PASSWORD})
    reply = browser.call("POST", "/admin/login/", raw=form.encode(),
                         content_type="application/x-www-form-urlencoded")
    assert reply.status == 302 and browser.cookie("sessionid"), reply
    return browser


def test_the_plain_wheel_brings_none_of_the_extras(host):
    if host.variant.extras:
        pytest.skip("this host installed the extras")
    probe = "import importlib.util as u; print([m for m in ('drf_spectacular', " \
            "'prometheus_client') if u.find_spec(m)])"
    assert host.manage("shell", "-c", probe).stdout.strip().endswith("[]")


def test_the_apps_migrations_are_complete_under_the_hosts_settings(host):
    # The MTI host keeps DEFAULT_AUTO_FIELD = AutoField, as projects from before Django 3.2 do.
    result = host.manage("makemigrations", "--check", "--dry-run", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_passes_without_a_warning(host):
    result = host.manage("check", "--deploy", "--fail-level", "WARNING", check=False,
                         HOST_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_system_check_refuses_a_locmem_token_cache(host):
    result = host.manage("check", check=False, HOST_TOKEN_CACHE="locmem")
    assert result.returncode == 1
    assert "tokens.E002" in result.stderr, result.stderr


def test_the_hosts_own_api_keeps_the_hosts_defaults(host):
    # The premise of every test below: the host's REST_FRAMEWORK defaults are in force.
    reply = host.client().call("GET", "/whoami/")
    assert reply.status == 403 and set(reply.body) == {"error"}, reply


def test_login_refresh_and_reuse(host):
    client = host.client()
    assert_error(login(client, host, "alice", "wrong password"), 401, "invalid_credentials")
    reply = login(client, host, "alice")
    assert reply.status == 200, reply
    assert set(reply.body) == {"access_token", "refresh_token", "token_type", "expires_in",
                               "refresh_expires_in"}
    assert "no-store" in reply.headers["Cache-Control"]
    assert reply.raw.startswith(b'{"access_token":"')  # compact, whatever COMPACT_JSON says
    pair = reply.body
    successor = refresh(client, pair["refresh_token"])
    assert successor.status == 200, successor
    assert me(client, successor.body["access_token"]).status == 200
    # ROTATION_LEEWAY is 0 in this host: any replay of a spent token is reuse.
    assert_error(refresh(client, pair["refresh_token"]), 401, "token_reused")
    assert_error(refresh(client, successor.body["refresh_token"]), 401, "token_reused")
    assert_error(me(client, successor.body["access_token"]), 401, "session_revoked")


def test_many_anonymous_requests_are_not_throttled_by_the_host(host):
    # The host throttles anonymous requests to 5 an hour; the app has its own login limits.
    client = host.client()
    for _ in range(8):
        assert_error(refresh(client, "not a token"), 401, "token_invalid")


def test_me_answers_to_the_bearer_token(host):
    client = host.client()
    pair = pair_of(client, host, "bob")
    reply = me(client, pair["access_token"])
    assert reply.status == 200, reply
    assert reply.body == {"id": host.user_ids["bob"], "username": host.login_name("bob"),
                          "email": "bob@host.example"}
    assert_error(client.call("GET", ME), 401, "not_authenticated")


def test_a_signed_token_for_a_user_id_beyond_the_pk_column_is_invalid(host):
    # The MTI host's pk is its link to the parent's row: checked against the parent's id
    # column (AutoField), or SQLite's driver overflows on 25 digits (a 500).
    client = host.client()
    pair = pair_of(client, host, "alice")
    for sub in ("9" * 25, str(2**31), str(2**63)):
        assert_error(me(client, forged(host, pair["access_token"], sub=sub)), 401,
                     "token_invalid")
        assert_error(refresh(client, forged(host, pair["refresh_token"], sub=sub)), 401,
                     "token_invalid")
    assert me(client, pair["access_token"]).status == 200


@pytest.mark.parametrize("path", [ME, SESSIONS, LOGOUT_ALL, PASSWORD_URL])
def test_the_hosts_django_session_is_no_credential_for_the_app(host, path):
    # Logged in to the host's admin, a browser carries Django's session cookie everywhere:
    # the app's endpoints take access tokens only (under SessionAuthentication the sessions
    # list read a token's claims that a session has not).
    browser = admin_session(host)
    method = "GET" if path in (ME, SESSIONS) else "POST"
    body = None if method == "GET" else {}
    assert_error(browser.call(method, path, body), 401, "not_authenticated")


def test_sessions_list_and_delete(host):
    client = host.client()
    first, second = pair_of(client, host, "carol"), pair_of(client, host, "carol")
    reply = client.call("GET", SESSIONS, token=first["access_token"])
    assert reply.status == 200, reply
    sessions = reply.body
    assert len(sessions) == 2 and [s["current"] for s in sessions].count(True) == 1
    for session in sessions:  # ISO 8601 in UTC, whatever the host's DATETIME_FORMAT, TIME_ZONE
        for name in ("created_at", "last_used_at", "expires_at"):
            assert session[name].endswith("Z"), session
            datetime.fromisoformat(session[name])
    other = next(s["id"] for s in sessions if not s["current"])
    assert client.call("DELETE", f"{SESSIONS}{other}/", token=first["access_token"]).status == 204
    assert_error(me(client, second["access_token"]), 401, "session_revoked")
    assert_error(refresh(client, second["refresh_token"]), 401, "session_revoked")
    # Once more, as a retry after a lost reply would: the same answer.
    assert client.call("DELETE", f"{SESSIONS}{other}/", token=first["access_token"]).status == 204
    left = client.call("GET", SESSIONS, token=first["access_token"]).body
    assert [s["current"] for s in left] == [True]


def test_logout_and_logout_all(host):
    client = host.client()
    one, two, three = (pair_of(client, host, "dave") for _ in range(3))
    assert client.call("POST", LOGOUT, {"refresh_token": one["refresh_token"]}).status == 204
    assert_error(refresh(client, one["refresh_token"]), 401, "session_revoked")
    assert me(client, two["access_token"]).status == 200
    assert client.call("POST", LOGOUT_ALL, token=two["access_token"]).status == 204
    for pair in (two, three):
        assert_error(me(client, pair["access_token"]), 401, "session_revoked")
        assert_error(refresh(client, pair["refresh_token"]), 401, "session_revoked")
    assert_error(client.call("POST", LOGOUT_ALL), 401, "not_authenticated")


def test_cookie_mode(host):
    browser = host.client()
    body = {"username": host.login_name("erin"), "password": PASSWORD}
    assert_error(browser.call("POST", f"{COOKIE}token/", body), 403, "csrf_failed")
    reply = browser.call("POST", f"{COOKIE}token/", body, headers=FROM_THE_APP)
    assert reply.status == 200, reply
    assert "refresh_token" not in reply.body
    cookie = browser.cookie("tokens_refresh")
    # Scoped to where the host mounted the cookie endpoints, so the browser sends it there.
    assert cookie is not None and cookie.path == COOKIE, cookie
    assert cookie.has_nonstandard_attr("HttpOnly")
    refreshed = browser.call("POST", f"{COOKIE}refresh/", headers=FROM_THE_APP)
    assert refreshed.status == 200, refreshed
    assert me(browser, refreshed.body["access_token"]).status == 200
    assert browser.call("POST", f"{COOKIE}logout/", headers=FROM_THE_APP).status == 204
    assert browser.cookie("tokens_refresh") is None  # expired
    assert_error(browser.call("POST", f"{COOKIE}refresh/", headers=FROM_THE_APP), 401,
                 "token_invalid")


def test_password_change(host):
    client = host.client()
    current, other = pair_of(client, host, "frank"), pair_of(client, host, "frank")
    wrong = client.call("POST", PASSWORD_URL, {"old_password": "wrong", "new_password":
                        NEW_PASSWORD}, token=current["access_token"])
    assert_error(wrong, 400, "invalid")
    reply = client.call("POST", PASSWORD_URL, {"old_password": PASSWORD,
                                               "new_password": NEW_PASSWORD},
                        token=current["access_token"])
    assert reply.status == 200, reply
    assert me(client, reply.body["access_token"]).status == 200
    assert_error(refresh(client, other["refresh_token"]), 401, "session_revoked")
    assert_error(me(client, other["access_token"]), 401, "session_revoked")
    assert_error(login(client, host, "frank"), 401, "invalid_credentials")
    assert pair_of(client, host, "frank", NEW_PASSWORD)


def test_a_form_body_is_refused_as_the_app_refuses_it(host):
    form = urllib.parse.urlencode({"username": host.login_name("alice"), "password": PASSWORD})
    reply = host.client().call("POST", OBTAIN, raw=form.encode(),
                               content_type="application/x-www-form-urlencoded")
    assert_error(reply, 415, "unsupported_media_type")


def test_deeply_nested_json_is_a_parse_error(host):
    reply = host.client().call("POST", REFRESH, raw=b'{"refresh_token": ' + b"[" * 5000
                               + b"]" * 5000 + b"}")
    assert_error(reply, 400, "parse_error")


def test_the_app_renders_json_only(host):
    client = host.client()
    pair = pair_of(client, host, "alice")
    reply = client.call("GET", ME, token=pair["access_token"], headers={"Accept": "text/html"})
    assert_error(reply, 406, "not_acceptable")
    options = client.call("OPTIONS", OBTAIN).body
    assert options["renders"] == ["application/json"] == options["parses"], options


def test_jwks(host):
    reply = host.client().call("GET", JWKS)
    assert reply.status == 200 and reply.body == {"keys": []}, reply
    assert reply.headers["Cache-Control"] == "public, max-age=300"


def test_the_apps_routes_at_the_sites_root(host):
    client = host.client()
    jwks = client.call("GET", "/.well-known/jwks.json")
    assert jwks.status == 200 and jwks.body == {"keys": []}, jwks
    metrics = client.call("GET", "/metrics")  # this host lets 127.0.0.1 scrape
    if "metrics" in host.variant.extras:
        assert metrics.status == 200 and b"tokens_logins_total" in metrics.raw, metrics
    else:  # no prometheus-client: nothing counted, nothing served
        assert_error(metrics, 404, "not_found")
    assert client.call("GET", "/demo/").status == 404  # neither DEBUG nor DEMO_PAGE


def test_the_admin_shows_a_users_sessions(host):
    client = host.client()
    pair_of(client, host, "bob")
    browser = admin_session(host)
    model = host.variant.user_model.split(".")[1].lower()
    page = browser.call("GET", f"/admin/people/{model}/{host.user_ids['bob']}/sessions/")
    assert page.status == 200, page
    assert b"Revoke all sessions" in page.raw


def test_the_docs_extra_describes_the_apps_endpoints(host):
    if "docs" not in host.variant.extras:
        pytest.skip("this host did not install the [docs] extra")
    reply = host.client().call("GET", "/schema/?format=json")
    assert reply.status == 200, reply
    assert {OBTAIN, REFRESH, SESSIONS, ME} <= set(reply.body["paths"])


def test_the_server_logged_no_error_and_no_warning(host):
    # Last: whatever ran above, with deprecation warnings as errors, left no trace here.
    log = host.server_log()
    assert not re.search(r"Traceback|Error|Warning", log), log[-5000:]
