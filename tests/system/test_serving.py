"""Serving as in production: config.settings as shipped (DEBUG off, the manifest storage),
`collectstatic` into a fresh STATIC_ROOT, gunicorn with config/gunicorn.conf.py."""

import gzip
import re
import urllib.error
import urllib.request

import pytest

from tests.system.conftest import CLIENT_TIMEOUT, ROOT, ApiServer, start_project, wait_for

GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"
YEAR = 365 * 24 * 3600
BUNDLE = r"drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle\.[0-9a-f]{12}\.js"


@pytest.fixture(scope="module")
def api():
    project = start_project()
    project.base_env.update({"DJANGO_SETTINGS_MODULE": "config.settings",
                             "DJANGO_STATIC_ROOT": str(project.directory / "static")})
    try:
        project.manage("collectstatic", "--noinput")
        yield project.start_api(workers=1, config_file=GUNICORN_CONFIG)
    finally:
        project.stop()


def get(api: ApiServer, path: str, **headers: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"{api.base}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def linked(api: ApiServer, page: str, pattern: str) -> str:
    """The URL of the one static file `page` links to whose name matches `pattern`."""
    status, _, body = get(api, page)
    assert status == 200
    urls = re.findall(rf'(?:href|src)="(/static/{pattern})"', body.decode())
    assert len(urls) == 1, urls
    return urls[0]


def test_admin_stylesheet_has_a_hashed_name_and_is_cached_for_good(api):
    url = linked(api, "/admin/login/", r"admin/css/base\.[0-9a-f]{12}\.css")
    status, headers, body = get(api, url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    cache = headers["Cache-Control"]
    assert "immutable" in cache
    assert int(re.search(r"max-age=(\d+)", cache).group(1)) >= YEAR
    assert b"body" in body


def test_docs_page_gets_its_swagger_ui_bundle(api):
    url = linked(api, "/api/docs/", BUNDLE)
    status, headers, body = get(api, url)
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert b"SwaggerUIBundle" in body


def test_compressed_variant_when_the_client_accepts_it(api):
    url = linked(api, "/api/docs/", BUNDLE)
    _, plain_headers, plain = get(api, url)
    status, headers, compressed = get(api, url, **{"Accept-Encoding": "br, gzip"})
    assert status == 200
    assert "Content-Encoding" not in plain_headers
    assert headers["Content-Encoding"] == "gzip"
    assert len(compressed) < len(plain) / 2
    assert gzip.decompress(compressed) == plain


def test_access_log_has_the_path_only_and_escapes_it(api):
    secrets = ["query-secret", "bearer-secret", "cookie-secret", "key-secret", "referer-secret"]
    get(api, "/api/auth/me/?refresh_token=query-secret", Authorization="Bearer bearer-secret",
        Cookie="tokens_device=cookie-secret", **{"Idempotency-Key": "key-secret",
                                                 "Referer": "http://x/?t=referer-secret"})
    get(api, "/static/%1b[2Jcleared")
    wait_for(lambda: "cleared HTTP/1.1" in api.log.read_text())
    log = api.log.read_text()
    assert not [secret for secret in secrets if secret in log]
    assert '"GET /api/auth/me/ HTTP/1.1" 401' in log
    assert '"GET /static/\\x1b[2Jcleared HTTP/1.1" 404' in log
    assert "\x1b" not in log
