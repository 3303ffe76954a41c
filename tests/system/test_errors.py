"""Hostile and unusual requests against a real gunicorn with DEBUG off: nothing under /api/
answers 5xx, and what Django refuses itself (a bad Host, a body over the limit) comes back as
the API's JSON error body, not as an HTML page."""

import http.client
import json

import pytest
import redis
from django.urls import URLResolver, get_resolver, reverse

from tests.servers import refused_port
from tests.system.conftest import start_project

pytestmark = pytest.mark.timeout(120)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEEP = "[" * 1000 + "]" * 1000
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def shared():
    # One project and one server for the file: a few seconds, not a few per test.
    project = start_project()
    try:
        yield project, project.start_api()
    finally:
        project.stop()


@pytest.fixture
def api(shared):
    """The file's API server, with an empty store: one test's failed logins never throttle
    the next."""
    project, server = shared
    redis.Redis(port=project.redis.port).flushdb()
    return server


def send(api, method: str, path: str, body: str | bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A raw request: the status, headers and body as they came, JSON or not."""
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def assert_json_error(reply: tuple[int, dict, bytes], status: int, code: str) -> None:
    got_status, headers, body = reply
    assert (got_status, headers["Content-Type"]) == (status, "application/json"), body[:200]
    assert json.loads(body)["code"] == code


def api_paths() -> list[str]:
    """Every route under /api/ in the URLconf (path arguments filled with "1"), and two that
    match nothing."""
    paths = ["/api/", "/api/no-such-endpoint/"]
    for entry in get_resolver().url_patterns:
        if str(entry.pattern).startswith("api/"):
            routes = _routes(entry)
            paths += [reverse(name, kwargs=dict.fromkeys(args, "1")) for name, args in routes]
    return paths


def _routes(entry, namespace: str = ""):
    if isinstance(entry, URLResolver):
        inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
        for child in entry.url_patterns:
            yield from _routes(child, inner)
    else:
        yield f"{namespace}{entry.name}", entry.pattern.regex.groupindex


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_api_pages_answer_other_methods_with_a_json_405(api, path):
    for method in ("OPTIONS", "POST", "PUT", "DELETE"):
        reply = send(api, method, path)
        assert_json_error(reply, 405, "method_not_allowed")
        assert reply[1]["Allow"] == "GET, HEAD"
    assert send(api, "GET", "/api/docs/")[1]["Content-Type"].startswith("text/html")
    assert send(api, "GET", "/api/schema/")[1]["Content-Type"].startswith(
        "application/vnd.oai.openapi")


def test_api_pages_are_served_with_a_bearer_while_the_store_is_down(shared):
    # Public pages never authenticate: a valid token with Redis unreachable was a 500 on the
    # docs page (its template's `auth` context processor), a 503 on the schema.
    project, server = shared
    token = server.login()["access_token"]
    down = project.start_api(workers=1, REDIS_URL=f"redis://127.0.0.1:{refused_port()}/0")
    try:
        for path, content_type in (
                ("/api/docs/", "text/html"), ("/api/schema/", "application/vnd.oai.openapi"),
                ("/api/schema/?format=json", "application/vnd.oai.openapi+json")):
            for bearer in (token, "x.y.z"):
                status, headers, body = send(down, "GET", path,
                                             headers={"Authorization": f"Bearer {bearer}"})
                assert status == 200, (path, body[:200])
                assert headers["Content-Type"].startswith(content_type)
        assert_json_error(send(down, "GET", "/api/auth/me/",
                               headers={"Authorization": f"Bearer {token}"}),
                          503, "token_store_unavailable")
    finally:
        down.stop()


@pytest.mark.parametrize("path, query, accept, status, code", [
    ("/api/schema/", "?format=xml", "*/*", 404, "not_found"),
    ("/api/docs/", "?format=json", "*/*", 404, "not_found"),
    ("/api/schema/", "", "application/xml", 406, "not_acceptable"),
    ("/api/docs/", "", "application/json", 406, "not_acceptable"),
])
def test_api_page_errors_are_json(api, path, query, accept, status, code):
    assert_json_error(send(api, "GET", f"{path}{query}", headers={"Accept": accept}),
                      status, code)


def test_no_method_on_any_api_url_is_a_server_error_or_an_error_in_another_format(api):
    paths = api_paths()
    assert {"/api/auth/token/", "/api/auth/me/", "/api/schema/", "/api/docs/"} <= set(paths)
    token = api.login()["access_token"]
    # Logout-all last: it ends the session the sweep's token belongs to.
    paths.sort(key=lambda path: path.endswith("/logout-all/"))
    failures = []
    for path in paths:
        for method in METHODS:
            for auth in ({}, {"Authorization": f"Bearer {token}"}):
                for body in (None, "{}", DEEP):
                    status, headers, _ = send(api, method, path, body, {**JSON, **auth})
                    not_json = headers.get("Content-Type") != "application/json"
                    if status >= 500 or (status >= 400 and not_json):
                        failures.append((method, path, bool(auth), body and body[:2], status))
    assert failures == []


def test_bad_host_under_api_is_a_json_400(api):
    reply = send(api, "GET", "/api/auth/me/", headers={"Host": "evil.example"})
    assert_json_error(reply, 400, "bad_request")


def test_body_over_the_upload_limit_is_a_json_413(api):
    # Django refuses on the announced Content-Length (settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    # 2.5 MB) before reading the body. Only the first 64 KB are sent: a server that answers
    # early and closes would break the pipe of a client still sending the rest.
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        connection.putrequest("POST", "/api/auth/token/")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(3 * 1024 * 1024))
        connection.endheaders()
        connection.send(b'{"username": "' + b"x" * 65536)
        response = connection.getresponse()
        reply = response.status, dict(response.headers), response.read()
    finally:
        connection.close()
    assert_json_error(reply, 413, "request_too_large")


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/token/refresh/",
                                  "/api/auth/logout/"])
def test_deeply_nested_json_is_a_parse_error(api, path):
    assert_json_error(send(api, "POST", path, DEEP, JSON), 400, "parse_error")
