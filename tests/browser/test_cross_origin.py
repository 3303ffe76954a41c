"""Another site in real Chromium: a page on another loopback origin (127.0.0.2, another site
than 127.0.0.1) calling the API with the browser's cookie, by `fetch` and by a form."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.conftest import (
    GUNICORN_CONFIG, REFRESH_PATH, log_in, open_demo, requests_to, session_id,
    wait_for_requests,
)
from tests.helpers import PASSWORD

pytestmark = pytest.mark.timeout(60)

LOGOUT_PATH = "/api/auth/cookie/logout/"
PAGE = b"""<!doctype html>
<meta charset="utf-8"><title>another site</title>
<form id="refresh" method="post"><button>refresh</button></form>
<form id="logout" method="post"><button>log out</button></form>
<script>
const api = new URLSearchParams(location.search).get("api");
document.querySelector("#refresh").action = `${api}/api/auth/cookie/refresh/`;
document.querySelector("#logout").action = `${api}/api/auth/cookie/logout/`;
// What this page's script gets from an API call, with the browser's cookies: the status and
// body, or the name of the error a fetch refused by CORS ends in.
window.call = async (path, {method = "POST", body, token} = {}) => {
  const headers = {"X-Requested-With": "another-site", "Content-Type": "application/json"};
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const reply = await fetch(api + path, {method, headers, credentials: "include",
                                           body: body && JSON.stringify(body)});
    const text = await reply.text();
    return {status: reply.status, body: text ? JSON.parse(text) : null};
  } catch (error) {
    return {error: error.name};
  }
};
</script>
"""


class AnotherSite(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def another_site():
    """The origin of a page served from 127.0.0.2: another site than the API's 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.2", 0), AnotherSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def the_cookie(context) -> list[str]:
    return [c["value"] for c in context.cookies() if c["name"] == "tokens_refresh"]


def open_site(context, origin: str, api):
    page = context.new_page()
    page.goto(f"{origin}/?api={api.base}")
    page.wait_for_function("window.call !== undefined")
    return page


def logged_in_elsewhere(context, api) -> tuple[str, list[str]]:
    """Log alice in on the API's own origin: her session id, and the cookie the context holds.
    The demo page is closed after, so that no timer of its refreshes meanwhile."""
    page = open_demo(context, api)
    log_in(page)
    session = session_id(page)
    page.close()
    return session, the_cookie(context)


def still_logged_in(context, api) -> str:
    """The session id the API's own page restores from the cookie (one refresh)."""
    refreshed = requests_to(api, REFRESH_PATH, status=200)
    page = open_demo(context, api)
    page.wait_for_function("auth.state.status === 'logged-in'")
    wait_for_requests(api, REFRESH_PATH, refreshed + 1, status=200)
    return session_id(page)


def test_a_page_on_another_site_can_neither_refresh_nor_log_out_through_the_cookie(
        context, api, another_site):
    session, cookie = logged_in_elsewhere(context, api)
    assert cookie
    paths = (REFRESH_PATH, LOGOUT_PATH)
    posts = {path: requests_to(api, path, method="POST") for path in paths}
    site = open_site(context, another_site, api)
    for path in paths:
        # The header makes the fetch preflighted; the preflight gets no CORS headers (the
        # origin is not in DJANGO_CORS_ALLOWED_ORIGINS), so Chromium never sends the POST
        # and the script sees a network error, not a status.
        assert site.evaluate("(path) => call(path)", path) == {"error": "TypeError"}
        # gunicorn logs a request after answering it: wait for the preflight's line.
        wait_for_requests(api, path, 1, method="OPTIONS")
        assert requests_to(api, path, method="POST") == posts[path]
    for form, path in (("#refresh", REFRESH_PATH), ("#logout", LOGOUT_PATH)):
        # A cross-site form is sent (a top-level navigation needs no preflight), without the
        # header: refused before the cookie is read.
        site.goto(f"{another_site}/?api={api.base}")
        with site.expect_response(f"{api.base}{path}") as reply:
            site.click(f"{form} button")
        assert (reply.value.status, reply.value.json()["code"]) == (403, "csrf_failed")
        wait_for_requests(api, path, posts[path] + 1, method="POST")
    assert the_cookie(context) == cookie  # neither rotated nor expired
    assert still_logged_in(context, api) == session


def test_an_allowed_site_calls_the_api_in_body_mode_and_never_rides_the_cookie(
        context, project, another_site):
    api = project.start_api(workers=2, config_file=GUNICORN_CONFIG,
                            DJANGO_CORS_ALLOWED_ORIGINS=another_site)
    session, cookie = logged_in_elsewhere(context, api)
    site = open_site(context, another_site, api)
    credentials = {"username": "alice", "password": PASSWORD}
    # The README's topology for another site: body mode, then Bearer. The script reads the
    # answers (CORS headers on them, with credentials).
    login = site.evaluate("(body) => call('/api/auth/token/', {body})", credentials)
    assert login.get("status") == 200, login
    me = site.evaluate("(token) => call('/api/auth/me/', {method: 'GET', token})",
                       login["body"]["access_token"])
    assert (me["status"], me["body"]["username"]) == (200, "alice")
    # Cookie mode does not work across sites, allowed or not: 127.0.0.2 is another site than
    # 127.0.0.1, and Chromium neither sends the SameSite=Strict cookie with this page's
    # requests nor stores one from their answers. The refresh and the logout reach the API
    # without a cookie (token_invalid; a logout that ends nothing), the cookie login's
    # cookie is dropped, and the browser's own cookie and session are untouched.
    refresh = site.evaluate("(path) => call(path)", REFRESH_PATH)
    assert (refresh["status"], refresh["body"]["code"]) == (401, "token_invalid")
    assert site.evaluate("(path) => call(path)", LOGOUT_PATH) == {"status": 204, "body": None}
    cookie_login = site.evaluate("(body) => call('/api/auth/cookie/token/', {body})",
                                 credentials)
    assert cookie_login["status"] == 200 and "access_token" in cookie_login["body"]
    assert the_cookie(context) == cookie
    assert still_logged_in(context, api) == session
