"""Hostile bodies, out-of-range token subjects, and the errors Django raises before a view runs:
under /api/ every one is a 4xx with the JSON error body, never a 500 or an HTML page."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory, override_settings
from django.urls import get_resolver

from tests.helpers import (
    LOGOUT, ME, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, assert_error, claims_of, me, refresh,
    unreachable_caches,
)
from tests.tokens.test_attacks import ours

pytestmark = pytest.mark.django_db

DEEP = {
    "arrays": "[" * 1000 + "]" * 1000,
    "objects": '{"a": ' * 1000 + "1" + "}" * 1000,
    "very deep": '{"refresh_token": ' + "[" * 50_000 + "]" * 50_000 + "}",
}
# Beyond SQLite's (and PostgreSQL's) 64-bit integer column, either way.
OUT_OF_RANGE_SUBS = ["9" * 25, "-" + "9" * 25, str(2**63), str(-(2**63) - 1)]


def post_raw(api, path: str, body: str, **extra):
    return api.generic("POST", path, body, content_type="application/json", **extra)


@pytest.mark.parametrize("body", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize("path", [OBTAIN, REFRESH, LOGOUT])
def test_deeply_nested_json_is_a_parse_error(api, path, body):
    assert_error(post_raw(api, path, body), 400, "parse_error")


@pytest.mark.parametrize("body", DEEP.values(), ids=DEEP.keys())
def test_deeply_nested_json_is_a_parse_error_when_authenticated(api, user, login, body):
    pair = login(user)
    response = post_raw(api, PASSWORD_URL, body,
                        HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    assert_error(response, 400, "parse_error")
    assert me(api, pair["access_token"]).status_code == 200  # nothing changed


@pytest.mark.parametrize("sub", OUT_OF_RANGE_SUBS)
def test_signed_access_token_for_a_user_id_beyond_the_pk_column_is_invalid(api, user, login, sub):
    pair = login(user)
    access = ours({**claims_of(pair["access_token"]), "sub": sub})
    assert_error(me(api, access), 401, "token_invalid")


@pytest.mark.parametrize("sub", OUT_OF_RANGE_SUBS)
def test_signed_refresh_token_for_a_user_id_beyond_the_pk_column_is_invalid(api, user, login, sub):
    pair = login(user)
    forged = ours({**claims_of(pair["refresh_token"]), "sub": sub})
    assert_error(refresh(api, forged), 401, "token_invalid")
    assert refresh(api, pair["refresh_token"]).status_code == 200  # the real session is fine


def test_bad_host_under_api_is_a_json_400(api):
    assert_error(api.get(ME, HTTP_HOST="evil.example"), 400, "bad_request")


def test_bad_host_outside_api_keeps_djangos_page(api):
    response = api.get("/admin/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", [OBTAIN, REFRESH, LOGOUT])
def test_body_over_the_upload_limit_is_a_json_413(api, settings, path):
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = json.dumps({"username": padding, "password": PASSWORD, "refresh_token": padding})
    assert_error(post_raw(api, path, body), 413, "request_too_large")


def test_permission_denied_under_api_is_json_and_elsewhere_djangos_page():
    # Nothing under /api/ raises Django's PermissionDenied today (DRF answers its own 403s);
    # the handler is there for when something does.
    handler = get_resolver().resolve_error_handler(403)
    response = handler(RequestFactory().get(ME), exception=PermissionDenied())
    assert response.status_code == 403
    assert json.loads(response.content)["code"] == "permission_denied"
    response = handler(RequestFactory().get("/admin/"), exception=PermissionDenied())
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


# The docs page and the schema: public pages, with errors in JSON like the rest of /api/.

PAGES = ["/api/docs/", "/api/schema/"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
def test_api_pages_answer_other_methods_with_a_json_405(api, path, method):
    response = api.generic(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path, content_type", [("/api/docs/", "text/html"),
                                                ("/api/schema/", "application/vnd.oai.openapi")])
@pytest.mark.parametrize("bearer", ["valid", "x.y.z", "not a token", ""])
def test_api_pages_never_read_the_bearer_header(api, user, login, path, content_type, bearer):
    # Public pages: no 401 for a bad token, and with the token store down no 503, nor the
    # 500 the docs template's `auth` context processor made by authenticating again.
    token = login(user)["access_token"] if bearer == "valid" else bearer
    with override_settings(CACHES=unreachable_caches()):
        for method in ("GET", "HEAD"):
            response = api.generic(method, path, HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200, response.content[:200]
            assert response["Content-Type"].startswith(content_type)


@pytest.mark.parametrize("query, accept, content_type", [
    ("", None, "application/vnd.oai.openapi"),
    ("?format=yaml", None, "application/vnd.oai.openapi"),
    ("?format=json", None, "application/vnd.oai.openapi+json"),
    ("", "*/*", "application/vnd.oai.openapi"),
    ("", "application/json", "application/json"),
    ("", "application/vnd.oai.openapi+json", "application/vnd.oai.openapi+json"),
])
def test_the_schema_comes_as_yaml_or_json(api, query, accept, content_type):
    response = api.get(f"/api/schema/{query}", **({"HTTP_ACCEPT": accept} if accept else {}))
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert b"/api/auth/token/refresh/" in response.content


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("query", ["?format=xml", "?format=api", "?format=openapi",
                                   "?format=%00", "?format=yaml&format=xml"])
def test_an_unknown_format_on_an_api_page_is_a_json_404(api, path, query):
    assert_error(api.get(f"{path}{query}"), 404, "not_found")


@pytest.mark.parametrize("path, accept", [("/api/docs/", "application/json"),
                                          ("/api/docs/", "application/xml"),
                                          ("/api/schema/", "text/html"),
                                          ("/api/schema/", "application/xml")])
def test_an_unmet_accept_header_on_an_api_page_is_a_json_406(api, path, accept):
    assert_error(api.get(path, HTTP_ACCEPT=accept), 406, "not_acceptable")


@pytest.mark.parametrize("version", ["a%0d%0aX-Injected:%20yes", "a%22b", "%00", "v" * 300])
def test_the_schema_ignores_a_version_parameter(api, version):
    # One version of the API: a client's ?version= went into the schema and its
    # Content-Disposition header, where a newline was a 500.
    response = api.get(f"/api/schema/?version={version}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'inline; filename="Token service API.yaml"'
    assert response.content == api.get("/api/schema/").content


# Tokens are parsed strictly: three unpadded base64url segments, whatever carries them.

PADDINGS = ["=", "==", "===="]
COOKIE_REFRESH = "/api/auth/cookie/refresh/"


@pytest.mark.parametrize("pad", PADDINGS)
def test_a_padded_access_token_is_token_invalid(api, user, login, pad):
    # PyJWT accepts a signature padded with '=': the same token in another spelling.
    access = login(user)["access_token"]
    assert_error(me(api, access + pad), 401, "token_invalid")
    assert_error(api.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": "x" * 20},
                          format="json", HTTP_AUTHORIZATION=f"Bearer {access}{pad}"),
                 401, "token_invalid")
    assert me(api, access).status_code == 200


@pytest.mark.parametrize("pad", PADDINGS)
def test_a_padded_refresh_token_is_token_invalid_and_spends_nothing(api, user, login, pad):
    token = login(user)["refresh_token"]
    assert_error(refresh(api, token + pad), 401, "token_invalid")
    assert api.post(LOGOUT, {"refresh_token": token + pad}, format="json").status_code == 204
    assert refresh(api, token).status_code == 200  # neither rotated nor ended


@pytest.mark.parametrize("pad", PADDINGS)
def test_a_padded_refresh_cookie_is_token_invalid(api, user, pad):
    login = api.post("/api/auth/cookie/token/", {"username": "alice", "password": PASSWORD},
                     format="json", HTTP_X_REQUESTED_WITH="app")
    token = login.cookies["tokens_refresh"].value
    api.cookies["tokens_refresh"] = token + pad
    response = api.post(COOKIE_REFRESH, HTTP_X_REQUESTED_WITH="app")
    assert_error(response, 401, "token_invalid")
    api.cookies["tokens_refresh"] = token
    assert api.post(COOKIE_REFRESH, HTTP_X_REQUESTED_WITH="app").status_code == 200
