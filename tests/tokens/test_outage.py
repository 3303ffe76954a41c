"""A Redis outage answers 503 token_store_unavailable: never 401, never 500."""

import signal

import pytest
from django.test import override_settings

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, ME, OBTAIN, PASSWORD, REFRESH, SESSIONS, caches_at, unreachable_caches,
)
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "token_store_unavailable"
    assert response["Retry-After"]


def every_token_endpoint(api, pair):
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {pair['access_token']}"}
    yield api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json")
    yield api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
    yield api.post(LOGOUT, {"refresh_token": pair["refresh_token"]}, format="json")
    yield api.get(ME, **bearer)
    yield api.get(SESSIONS, **bearer)
    yield api.post(LOGOUT_ALL, **bearer)


def test_redis_down_answers_503_and_nothing_is_lost(api, user, login):
    pair = login(user)
    with override_settings(CACHES=unreachable_caches()):
        for response in every_token_endpoint(api, pair):
            assert_unavailable(response)
    # Redis is back: the session issued before the outage still refreshes.
    response = api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
    assert response.status_code == 200


def test_hung_redis_answers_503_within_the_socket_timeout(api, user, login):
    pair = login(user)
    hung = RedisServer.start()
    try:
        hung.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        with override_settings(CACHES=caches_at(hung.url)):
            assert_unavailable(api.post(REFRESH,
                                        {"refresh_token": pair["refresh_token"]}, format="json"))
            assert_unavailable(api.get(ME, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}"))
    finally:
        hung.process.send_signal(signal.SIGCONT)
        hung.stop()


def test_outage_is_logged_without_tokens(api, user, login, caplog):
    pair = login(user)
    with override_settings(CACHES=unreachable_caches()):
        api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
    assert "Token store unavailable" in caplog.text
    assert pair["refresh_token"].split(".")[2] not in caplog.text
