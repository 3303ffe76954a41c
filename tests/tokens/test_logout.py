"""POST /api/auth/logout/ (and its cookie twin): it ends the session of the token presented,
and a refresh token spent before the leeway is reuse there as on refresh: the session ends,
reported as a reuse (warning, security event, signal), and whoever holds its tokens hears
token_reused. The caller learns nothing either way (204)."""

import logging
from datetime import timedelta

import pytest
import time_machine

from tests.helpers import (LOGOUT, assert_error, change_password, claims_of, index_members, me,
                           refresh, session_keys)
from tokens import signals
from tokens.api.cookies import cookie_path
from tokens.api.cookies import PLAIN_COOKIE as COOKIE
from tokens.models import SecurityEvent

pytestmark = pytest.mark.django_db

COOKIE_LOGOUT, COOKIE_LOGIN, COOKIE_REFRESH = (
    "/api/auth/cookie/logout/", "/api/auth/cookie/token/", "/api/auth/cookie/refresh/")
APP = {"HTTP_X_REQUESTED_WITH": "app"}


def logout(api, token, **extra):
    return api.post(LOGOUT, {"refresh_token": token}, format="json", **extra)


@pytest.fixture
def reused():
    calls = []

    def receiver(sender, signal, **kwargs):
        calls.append(kwargs["session_id"])

    signals.refresh_token_reused.connect(receiver)
    yield calls
    signals.refresh_token_reused.disconnect(receiver)


def test_logout_with_a_token_spent_before_the_leeway_is_reuse(api, user, login, redis_conn,
                                                              caplog, reused):
    first = login(user)
    sid = claims_of(first["refresh_token"])["sid"]
    successor = refresh(api, first["refresh_token"]).json()
    with time_machine.travel(timedelta(seconds=11)):
        with caplog.at_level(logging.WARNING, logger="tokens"):
            response = logout(api, first["refresh_token"], REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 204  # the caller is told nothing
        assert session_keys(redis_conn, user.pk) == [] and index_members(redis_conn) == set()
        # The holder of the live token hears why its session ended.
        assert_error(refresh(api, successor["refresh_token"]), 401, "token_reused")
        assert_error(me(api, successor["access_token"]), 401, "session_revoked")
    (event,) = SecurityEvent.objects.all()
    assert (event.kind, event.session_id, event.ip_address) == ("reuse", sid, "203.0.113.9")
    assert reused == [sid]
    assert [r.levelno for r in caplog.records if "reuse" in r.getMessage()] == [logging.WARNING]
    assert first["refresh_token"] not in caplog.text


def test_logout_with_an_older_ancestor_is_reuse_even_inside_the_leeway(api, user, login,
                                                                       reused):
    first = login(user)
    second = refresh(api, first["refresh_token"]).json()
    third = refresh(api, second["refresh_token"]).json()
    assert logout(api, first["refresh_token"]).status_code == 204
    assert_error(refresh(api, third["refresh_token"]), 401, "token_reused")
    assert reused == [claims_of(first["refresh_token"])["sid"]]


def test_logout_with_the_token_just_spent_inside_the_leeway_is_a_plain_logout(api, user, login,
                                                                              redis_conn,
                                                                              reused):
    # A tab that logs out while another has just rotated: the user meant to log out.
    first = login(user)
    successor = refresh(api, first["refresh_token"]).json()
    with time_machine.travel(timedelta(seconds=9)):
        assert logout(api, first["refresh_token"]).status_code == 204
    assert session_keys(redis_conn, user.pk) == []
    assert_error(refresh(api, successor["refresh_token"]), 401, "session_revoked")
    assert reused == [] and not SecurityEvent.objects.exists()


def test_logout_with_a_spent_token_of_a_later_generation_is_reuse_after_the_leeway(
        api, user, login, reused):
    # A spent token that names a parent (every token a rotation issued does) is reuse too:
    # only a parent that is the session's current token is a rotation the store lost.
    first = login(user)
    second = refresh(api, first["refresh_token"]).json()
    third = refresh(api, second["refresh_token"]).json()
    with time_machine.travel(timedelta(seconds=11)):
        assert logout(api, second["refresh_token"]).status_code == 204
        assert_error(refresh(api, third["refresh_token"]), 401, "token_reused")
    assert reused == [claims_of(first["refresh_token"])["sid"]]


def test_logout_with_a_token_whose_rotation_the_store_lost_is_a_plain_logout(
        api, user, login, redis_conn, reused):
    first = login(user)
    (key,) = session_keys(redis_conn, user.pk)
    before = redis_conn.hgetall(key)
    second = refresh(api, first["refresh_token"]).json()
    redis_conn.delete(key)  # the rotation lost (a failover): the record as before it
    redis_conn.hset(key, mapping=before)
    redis_conn.expire(key, 3600)
    assert logout(api, second["refresh_token"]).status_code == 204
    assert session_keys(redis_conn, user.pk) == []
    assert reused == [] and not SecurityEvent.objects.exists()


def test_logout_of_a_session_that_expired_drops_it_from_the_index(api, user, login, redis_conn):
    pair = login(user)
    (key,) = session_keys(redis_conn, user.pk)
    redis_conn.delete(key)  # expired
    assert logout(api, pair["refresh_token"]).status_code == 204
    assert index_members(redis_conn) == set()


def test_logout_with_the_current_token_long_after_is_a_plain_logout(api, user, login, reused):
    first = login(user)
    current = refresh(api, first["refresh_token"]).json()
    with time_machine.travel(timedelta(days=2)):
        assert logout(api, current["refresh_token"]).status_code == 204
        assert_error(refresh(api, current["refresh_token"]), 401, "session_revoked")
    assert reused == [] and not SecurityEvent.objects.exists()


def test_logout_with_a_token_from_before_a_password_change_ends_nothing(api, user, login):
    pair = login(user)
    new = change_password(api, pair["access_token"]).json()
    assert logout(api, pair["refresh_token"]).status_code == 204
    assert refresh(api, new["refresh_token"]).status_code == 200
    assert not SecurityEvent.objects.filter(kind="reuse").exists()


def test_cookie_logout_with_a_spent_cookie_is_reuse(user, reused):
    from django.test import Client

    browser = Client()
    login = browser.post(COOKIE_LOGIN, {"username": user.username,
                                        "password": "correct horse battery staple"},
                         content_type="application/json", **APP)
    spent = login.cookies[COOKIE].value
    assert browser.post(COOKIE_REFRESH, **APP).status_code == 200
    live = browser.cookies[COOKIE].value
    thief = Client()
    thief.cookies[COOKIE] = spent
    thief.cookies[COOKIE]["path"] = cookie_path()
    with time_machine.travel(timedelta(seconds=11)):
        assert thief.post(COOKIE_LOGOUT, **APP).status_code == 204
        response = browser.post(COOKIE_REFRESH, **APP)
    assert_error(response, 401, "token_reused")
    assert reused == [claims_of(live)["sid"]]
