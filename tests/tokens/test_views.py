"""The REST contract, end to end through Django's test client and the real Redis."""

import logging
import time
from datetime import datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import make_password
from django.core.cache import caches
from django.test import override_settings

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, ME, OBTAIN, PASSWORD, REFRESH, SESSIONS, assert_error, me, refresh,
    session_keys,
)
from tokens import jwt, services

pytestmark = pytest.mark.django_db


def session_id(pair) -> str:
    return jwt.decode(pair["refresh_token"], typ=jwt.REFRESH).sid


def in_redis(redis_conn, user, sid) -> tuple[bool, bool]:
    """Whether the session's hash is in Redis, and whether the user's index lists its id
    (the keys the README names: `…:tokens:{<uid>}:s:<sid>` and `…:tokens:{<uid>}:sessions`)."""
    key = caches["default"].make_key
    return (bool(redis_conn.exists(key(f"tokens:{{{user.pk}}}:s:{sid}"))),
            bool(redis_conn.sismember(key(f"tokens:{{{user.pk}}}:sessions"), sid)))

# Obtain


def test_login_returns_a_token_pair_that_is_not_cached(api, user):
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in",
                         "refresh_expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 30 * 24 * 3600
    assert "no-store" in response["Cache-Control"]


def test_access_token_from_login_authenticates(api, user, login):
    response = me(api, login(user)["access_token"])
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "username": "alice", "email": "alice@example.com"}


@pytest.mark.parametrize("plain", [True, False], ids=["raw row", "default manager"])
def test_the_user_a_token_authenticates_is_the_one_the_orm_reads(user, login, plain,
                                                                monkeypatch):
    # A view gets request.user as if loaded by the ORM: typed fields (datetimes, booleans),
    # and an instance that saves as an update of its row; by the raw row of a plain model,
    # or through the default manager of one with parents or a manager of its own.
    from tokens import users

    monkeypatch.setattr(users, "_plain", lambda model: plain)
    authenticated, _ = services.authenticate_access(access_token=login(user)["access_token"])
    loaded = type(user).objects.get(pk=user.pk)
    for field in type(user)._meta.concrete_fields:
        value = getattr(authenticated, field.attname)
        assert value == getattr(loaded, field.attname), field.name
        assert type(value) is type(getattr(loaded, field.attname)), field.name
    authenticated.first_name = "Alice"
    authenticated.save()
    assert list(type(user).objects.values_list("pk", "first_name")) == [(user.pk, "Alice")]


def test_a_user_model_with_a_manager_of_its_own_is_read_through_it():
    from django.contrib.auth.models import Group, UserManager

    from tokens import users

    class Hiding(UserManager):
        def get_queryset(self):
            return super().get_queryset().filter(is_active=True)

    assert users._plain(Group)
    model = type("Plain", (), {})  # only what _plain reads
    model._meta = Group._meta
    model._default_manager = Hiding()
    assert not users._plain.__wrapped__(model)


@pytest.mark.parametrize("plain", [True, False], ids=["raw row", "default manager"])
def test_a_refresh_reads_the_password_either_way(api, user, login, plain, monkeypatch):
    from tokens import users

    monkeypatch.setattr(users, "_plain", lambda model: plain)
    pair = refresh(api, login(user)["refresh_token"]).json()
    assert "refresh_token" in pair
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal sent
    assert_error(refresh(api, pair["refresh_token"]), 401, "user_inactive")


def test_wrong_password_is_refused(api, user):
    response = api.post(OBTAIN, {"username": "alice", "password": "nope"}, format="json")
    assert_error(response, 401, "invalid_credentials")


def test_inactive_user_cannot_log_in(api, make_user):
    make_user(username="bob", is_active=False)
    response = api.post(OBTAIN, {"username": "bob", "password": PASSWORD}, format="json")
    assert_error(response, 401, "invalid_credentials")


@override_settings(
    AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"])
def test_inactive_user_cannot_log_in_whatever_the_backends_allow(api, make_user, redis_conn):
    make_user(username="bob", is_active=False)
    response = api.post(OBTAIN, {"username": "bob", "password": PASSWORD}, format="json")
    assert_error(response, 401, "invalid_credentials")
    assert session_keys(redis_conn) == []


@override_settings(AUTHENTICATION_BACKENDS=["tests.backends.RequestModelBackend"])
def test_the_authentication_backends_are_handed_the_request(api, user):
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "body", [{}, {"username": "alice"}, {"password": PASSWORD}, {"username": [], "password": 1}]
)
def test_malformed_login_is_a_400_with_field_errors(api, user, body):
    response = api.post(OBTAIN, body, format="json")
    assert_error(response, 400, "invalid")
    assert response.json()["errors"]


def test_login_with_broken_json_is_a_400(api, user):
    response = api.post(OBTAIN, "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


# Refresh and rotation


def test_refresh_rotates_both_tokens(api, user, login):
    pair = login(user)
    response = refresh(api, pair["refresh_token"])
    assert response.status_code == 200
    new = response.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert new["access_token"] != pair["access_token"]
    assert "no-store" in response["Cache-Control"]
    assert me(api, new["access_token"]).status_code == 200
    assert refresh(api, new["refresh_token"]).status_code == 200


def test_replay_inside_leeway_returns_the_same_successor(api, user, login):
    pair = login(user)
    first = refresh(api, pair["refresh_token"]).json()
    second = refresh(api, pair["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] == first["refresh_token"]
    # The session did not fork or die: the successor still rotates.
    assert refresh(api, first["refresh_token"]).status_code == 200


def test_replay_after_leeway_is_reuse_and_ends_the_session(api, user, login, caplog,
                                                           redis_conn):
    pair = login(user)
    sid = session_id(pair)
    successor = refresh(api, pair["refresh_token"]).json()
    assert in_redis(redis_conn, user, sid) == (True, True)
    with time_machine.travel(timedelta(seconds=11)):
        with caplog.at_level(logging.WARNING, logger="tokens"):
            replay = api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json",
                              REMOTE_ADDR="203.0.113.7")
        assert_error(replay, 401, "token_reused")
        assert in_redis(redis_conn, user, sid) == (False, False)
        assert_error(refresh(api, successor["refresh_token"]), 401, "token_reused")
        assert_error(me(api, successor["access_token"]), 401, "session_revoked")
    # The README: a warning with user, session and IP, never the token.
    (warning,) = [r for r in caplog.records if "reuse" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    words = warning.getMessage().replace("(", " ").replace(")", " ").split()
    assert {f"user={user.pk}", f"session={sid}", "ip=203.0.113.7"} <= set(words)
    assert pair["refresh_token"] not in caplog.text
    assert pair["refresh_token"].split(".")[2] not in caplog.text


def test_older_ancestor_inside_leeway_is_reuse(api, user, login):
    first = login(user)
    second = refresh(api, first["refresh_token"]).json()
    third = refresh(api, second["refresh_token"]).json()
    assert_error(refresh(api, first["refresh_token"]), 401, "token_reused")
    assert_error(refresh(api, third["refresh_token"]), 401, "token_reused")


@override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)})
def test_zero_leeway_makes_any_replay_reuse(api, user, login):
    pair = login(user)
    successor = refresh(api, pair["refresh_token"]).json()
    assert_error(refresh(api, pair["refresh_token"]), 401, "token_reused")
    assert_error(refresh(api, successor["refresh_token"]), 401, "token_reused")


def test_refresh_token_expires_after_idle_lifetime(api, user, login):
    pair = login(user)
    with time_machine.travel(timedelta(days=30, seconds=1)):
        assert_error(refresh(api, pair["refresh_token"]), 401, "token_expired")


def test_refreshing_extends_the_idle_lifetime(api, user, login):
    token = login(user)["refresh_token"]
    for days in (20, 40):
        with time_machine.travel(timedelta(days=days)):
            response = refresh(api, token)
            assert response.status_code == 200
            token = response.json()["refresh_token"]


def test_session_ends_at_its_absolute_lifetime_however_often_it_refreshes(api, user, login):
    token = login(user)["refresh_token"]
    for days in (25, 50, 75):
        with time_machine.travel(timedelta(days=days)):
            response = refresh(api, token)
            assert response.status_code == 200
            token = response.json()["refresh_token"]
    # The last successor is capped at the 90-day mark, not 75 + 30 days.
    assert response.json()["refresh_expires_in"] <= 15 * 24 * 3600
    with time_machine.travel(timedelta(days=90, seconds=1)):
        assert_error(refresh(api, token), 401, "token_expired")


def test_access_token_is_not_accepted_as_refresh_token(api, user, login):
    assert_error(refresh(api, login(user)["access_token"]), 401, "token_invalid")


def test_refresh_token_is_not_accepted_as_bearer(api, user, login):
    assert_error(me(api, login(user)["refresh_token"]), 401, "token_invalid")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 10000, ""])
def test_garbage_refresh_token_is_refused(api, user, token):
    # Any string is judged as a token (401); only a non-string body is malformed (400).
    assert_error(refresh(api, token), 401, "token_invalid")


def test_forged_unsigned_refresh_token_is_refused(api, user, login):
    header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    payload = login(user)["refresh_token"].split(".")[1]
    assert_error(refresh(api, f"{header}.{payload}."), 401, "token_invalid")


def test_deactivated_user_can_neither_refresh_nor_use_access(api, user, login):
    pair = login(user)
    user.is_active = False
    user.save()
    assert_error(refresh(api, pair["refresh_token"]), 401, "user_inactive")
    assert me(api, pair["access_token"]).status_code == 401


def test_password_change_ends_earlier_sessions(api, user, login):
    pair = login(user)
    user.set_password("a brand new password")
    user.save()
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")
    response = api.post(OBTAIN, {"username": "alice", "password": "a brand new password"},
                        format="json")
    assert me(api, response.json()["access_token"]).status_code == 200


def test_password_written_straight_to_the_database_also_ends_sessions(api, user, login):
    pair = login(user)
    type(user).objects.filter(pk=user.pk).update(password=make_password("changed elsewhere"))
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


# Logout


def test_logout_ends_the_session(api, user, login, redis_conn):
    pair = login(user)
    sid = session_id(pair)
    assert in_redis(redis_conn, user, sid) == (True, True)
    response = api.post(LOGOUT, {"refresh_token": pair["refresh_token"]}, format="json")
    assert response.status_code == 204
    assert in_redis(redis_conn, user, sid) == (False, False)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")


def test_logout_is_idempotent(api, user, login):
    token = login(user)["refresh_token"]
    for _ in range(2):
        assert api.post(LOGOUT, {"refresh_token": token}, format="json").status_code == 204


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_logout_answers_204_for_any_token_string(api, token):
    for _ in range(2):
        assert api.post(LOGOUT, {"refresh_token": token}, format="json").status_code == 204


def test_logout_with_expired_token_answers_204(api, user, login):
    token = login(user)["refresh_token"]
    with time_machine.travel(timedelta(days=31)):
        assert api.post(LOGOUT, {"refresh_token": token}, format="json").status_code == 204


@pytest.mark.parametrize("body", [{}, {"refresh_token": 5}, {"refresh_token": None}])
def test_logout_with_malformed_body_is_a_400(api, body):
    assert_error(api.post(LOGOUT, body, format="json"), 400, "invalid")


def test_logout_all_ends_every_session_of_the_user_only(api, user, make_user, login,
                                                        redis_conn):
    first, second = login(user), login(user)
    bob = make_user(username="bob")
    other = login(bob)
    response = api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    assert response.status_code == 204
    for pair in (first, second):
        assert in_redis(redis_conn, user, session_id(pair)) == (False, False)
    assert in_redis(redis_conn, bob, session_id(other)) == (True, True)
    for pair in (first, second):
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert refresh(api, other["refresh_token"]).status_code == 200


def test_logout_all_needs_a_bearer_token(api):
    response = api.post(LOGOUT_ALL)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


# Sessions


def test_sessions_lists_the_users_live_sessions(api, user, make_user, login):
    # The clock stands still but for one step, so "newest first" never rests on two logins
    # falling in different milliseconds (tokens may not be issued in the future: the whole
    # test runs on the moved clock).
    start = round(time.time(), 3)
    with time_machine.travel(start, tick=False) as clock:
        login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.1.2.3")
        clock.shift(1)
        current = login(user, HTTP_USER_AGENT="Chromium/156")
        login(make_user(username="bob"))
        response = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {current['access_token']}")
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    assert {s["user_agent"] for s in sessions} == {"Firefox/140", "Chromium/156"}
    assert [s["current"] for s in sessions] == [True, False]  # newest first
    firefox = next(s for s in sessions if s["user_agent"] == "Firefox/140")
    assert firefox["ip_address"] == "10.1.2.3"
    assert datetime.fromisoformat(firefox["created_at"]).timestamp() == start  # to the ms
    assert set(firefox) == {"id", "created_at", "last_used_at", "expires_at", "user_agent",
                            "ip_address", "current"}


def test_refresh_updates_last_used(api, user, login):
    pair = login(user)
    with time_machine.travel(timedelta(hours=1)):
        new = refresh(api, pair["refresh_token"]).json()
        (session,) = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {new['access_token']}").json()
    assert session["last_used_at"] > session["created_at"]


def test_deleting_a_session_ends_it(api, user, login, redis_conn):
    current, other = login(user), login(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {current['access_token']}"}
    sessions = api.get(SESSIONS, **auth).json()
    other_id = next(s["id"] for s in sessions if not s["current"])
    assert other_id == session_id(other)
    assert in_redis(redis_conn, user, other_id) == (True, True)
    assert api.delete(f"{SESSIONS}{other_id}/", **auth).status_code == 204
    assert in_redis(redis_conn, user, other_id) == (False, False)
    assert in_redis(redis_conn, user, session_id(current)) == (True, True)
    assert_error(refresh(api, other["refresh_token"]), 401, "session_revoked")
    assert len(api.get(SESSIONS, **auth).json()) == 1


def test_deleting_another_users_session_ends_nothing_and_says_nothing(api, user, make_user,
                                                                    login):
    mine = login(user)
    bob = login(make_user(username="bob"))
    bob_session = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {bob['access_token']}").json()[0]
    response = api.delete(f"{SESSIONS}{bob_session['id']}/",
                          HTTP_AUTHORIZATION=f"Bearer {mine['access_token']}")
    # The same answer as for one of the caller's own sessions: no oracle for session ids.
    assert response.status_code == 204
    assert refresh(api, bob["refresh_token"]).status_code == 200


def test_sessions_need_a_bearer_token(api):
    assert_error(api.get(SESSIONS), 401, "not_authenticated")


# Bearer authentication


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer garbage", "Bearer \u00e9t\u00e9"]
)
def test_bad_bearer_header_is_a_401(api, header):
    response = api.get(ME, HTTP_AUTHORIZATION=header)
    assert_error(response, 401, "token_invalid")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_access_token_is_refused(api, user, login):
    access = login(user)["access_token"]
    with time_machine.travel(timedelta(minutes=5, seconds=1)):
        assert_error(me(api, access), 401, "token_expired")


def test_access_survives_logout_without_session_check(api, user, login):
    pair = login(user)
    api.post(LOGOUT, {"refresh_token": pair["refresh_token"]}, format="json")
    with override_settings(TOKENS={"CHECK_SESSION_ON_ACCESS": False}):
        assert me(api, pair["access_token"]).status_code == 200
    assert me(api, pair["access_token"]).status_code == 401


# Schema


def test_openapi_schema_and_self_hosted_docs(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {OBTAIN, REFRESH, LOGOUT, LOGOUT_ALL, SESSIONS, f"{SESSIONS}{{session_id}}/",
            ME} <= set(paths)
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "drf_spectacular_sidecar" in html
    assert "cdn." not in html and "unpkg" not in html


def test_unknown_api_path_is_a_json_404(api, user, login):
    access = login(user)["access_token"]
    response = api.delete(f"{SESSIONS}not*a*session/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert_error(response, 404, "not_found")
    assert_error(api.get("/api/nothing-here/"), 404, "not_found")
