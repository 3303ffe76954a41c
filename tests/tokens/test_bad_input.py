"""Hostile bodies, out-of-range token subjects, and the errors Django raises before a view runs:
under /api/ every one is a 4xx with the JSON error body, never a 500 or an HTML page."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import get_resolver

from tests.helpers import (
    LOGOUT, ME, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, assert_error, claims_of, me, refresh,
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


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "DELETE"])
def test_docs_page_answers_other_methods_with_405(api, method):
    response = api.generic(method, "/api/docs/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert api.get("/api/docs/").status_code == 200
