"""What a new password does to the user's sessions, by every path that sets one (the API's
change, a reset link, the shell, the admin, raw SQL): the sessions of the old password are
refused, listed nowhere, and leave Redis (hash and index entry); the session the API's
change kept goes on, and no token from before the change can end or use it."""

import logging

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test import Client
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, OBTAIN, PASSWORD, PASSWORD_URL, SESSIONS, assert_error, claims_of,
    index_keys, index_members, me, redis_keys, refresh, session_keys, session_record,
)
from tests.tokens.test_many_sessions import MANY, add_sessions
from tests.tokens.test_signals import received  # noqa: F401 (a fixture: the signals sent)
from tokens.api.cookies import COOKIE_PATH
from tokens.api.cookies import PLAIN_COOKIE as COOKIE
from tokens.models import SecurityEvent

pytestmark = pytest.mark.django_db

NEW = "a much better passphrase 42"
CONFIRM = "/api/auth/password/reset/confirm/"
COOKIE_LOGIN, COOKIE_REFRESH, COOKIE_LOGOUT, COOKIE_PASSWORD = (
    "/api/auth/cookie/token/", "/api/auth/cookie/refresh/", "/api/auth/cookie/logout/",
    "/api/auth/cookie/password/")
APP = {"HTTP_X_REQUESTED_WITH": "app"}


def sid_of(pair: dict) -> str:
    return claims_of(pair.get("refresh_token") or pair["access_token"])["sid"]


def change(access: str, old: str = PASSWORD, new: str = NEW, client=None, url=PASSWORD_URL,
           **extra):
    return (client or APIClient()).post(
        url, {"old_password": old, "new_password": new}, format="json",
        HTTP_AUTHORIZATION=f"Bearer {access}", **extra)


def log_in(user, password: str = PASSWORD) -> dict:
    response = APIClient().post(OBTAIN, {"username": user.username, "password": password},
                                format="json")
    assert response.status_code == 200, response.content
    return response.json()


def listed(access: str) -> list[str]:
    """The ids of the sessions the caller's list shows."""
    response = APIClient().get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 200, response.content
    return [session["id"] for session in response.json()]


def ended_by(received, reason: str) -> set[str]:
    return {call["session_id"] for call in received["session_ended"] if call["reason"] == reason}


def assert_gone_from_redis(redis_conn, user, sid: str) -> None:
    assert session_keys(redis_conn, user.pk, sid) == []
    assert sid.encode() not in index_members(redis_conn, user.pk)


# --- The API's change: the other sessions leave Redis ---

def test_a_change_removes_every_other_sessions_hash_and_index_entry(user, login, redis_conn,
                                                                    received):
    current, *others = [login(user) for _ in range(4)]
    received.clear()
    new = change(current["access_token"]).json()
    (kept,) = session_keys(redis_conn, user.pk)
    assert kept.decode().endswith(f":s:{sid_of(current)}")
    assert index_members(redis_conn, user.pk) == {sid_of(current).encode()}
    assert redis_keys(redis_conn, "*:x:*") == []  # ended by the change, not as a reuse
    assert ended_by(received, "password_change") == {sid_of(pair) for pair in others}
    assert len(received["session_ended"]) == 3 and not received["refresh_token_reused"]
    for pair in others:
        assert_error(refresh(APIClient(), pair["refresh_token"]), 401, "session_revoked")
    assert listed(new["access_token"]) == [sid_of(current)]


def test_a_change_drops_the_index_entry_of_a_session_that_had_expired(user, login, redis_conn,
                                                                      received):
    current, expired = login(user), login(user)
    (key,) = session_keys(redis_conn, user.pk, sid_of(expired))
    redis_conn.delete(key)  # its TTL ran out: the index still lists it
    received.clear()
    assert change(current["access_token"]).status_code == 200
    assert index_members(redis_conn, user.pk) == {sid_of(current).encode()}
    assert received["session_ended"] == []  # it was not live: nothing ended


# --- A token from before the change can neither end nor use the session it kept ---

def stale_token(how: str, user):
    """Log in (in cookie mode for the cookie cases) and change the password; returns a call
    that presents the session's refresh token from before the change by `how`, the new
    access token, and a call that refreshes the session the change kept."""
    cookie = how.startswith("cookie")
    holder = APIClient()
    credentials = {"username": user.username, "password": PASSWORD}
    first = holder.post(COOKIE_LOGIN if cookie else OBTAIN, credentials, format="json",
                        **(APP if cookie else {}))
    assert first.status_code == 200, first.content
    old = first.cookies[COOKIE].value if cookie else first.json()["refresh_token"]
    access = first.json()["access_token"]
    if how.endswith("spent"):  # spent before the change: an ancestor of the current token
        rotated = holder.post(COOKIE_REFRESH, **APP) if cookie else refresh(holder, old)
        assert rotated.status_code == 200
        access = rotated.json()["access_token"]
    changed = change(access, client=holder, url=COOKIE_PASSWORD if cookie else PASSWORD_URL,
                     **(APP if cookie else {}))
    assert changed.status_code == 200, changed.content
    new = changed.json()

    def resume():
        if cookie:
            return holder.post(COOKIE_REFRESH, **APP)
        return refresh(APIClient(), new["refresh_token"])

    def present():
        other = APIClient()
        if cookie:
            other.cookies[COOKIE] = old
            other.cookies[COOKIE]["path"] = COOKIE_PATH
            return other.post(COOKIE_LOGOUT if "logout" in how else COOKIE_REFRESH, **APP)
        if "logout" in how:
            return other.post(LOGOUT, {"refresh_token": old}, format="json")
        return refresh(other, old)

    return present, new["access_token"], resume


STALE = ["logout", "logout spent", "refresh", "refresh spent", "cookie logout",
         "cookie logout spent", "cookie refresh", "cookie refresh spent"]


@pytest.mark.parametrize("how", STALE)
def test_a_refresh_token_from_before_the_change_ends_nothing(how, user, redis_conn, received,
                                                             caplog):
    present, new_access, resume = stale_token(how, user)
    (key,) = session_keys(redis_conn, user.pk)
    sid = key.decode().rsplit(":", 1)[1]
    record = redis_conn.hgetall(key)
    received.clear()
    with caplog.at_level(logging.WARNING, logger="tokens"):
        response = present()
    if "logout" in how:
        assert response.status_code == 204  # the caller learns nothing
    else:
        assert_error(response, 401, "session_revoked")
    # Nothing changed: the session's record byte for byte, its index; no reuse mark, no
    # signal (no refresh_token_reused, no session_ended), no warning, no event.
    assert redis_conn.hgetall(key) == record
    assert index_members(redis_conn, user.pk) == {sid.encode()}
    assert redis_keys(redis_conn, "*:x:*") == []
    assert dict(received) == {}
    assert not SecurityEvent.objects.filter(kind="reuse").exists()
    assert [r.getMessage() for r in caplog.records
            if r.name.startswith("tokens") and r.levelno >= logging.WARNING] == []
    # The session the change kept goes on.
    assert me(APIClient(), new_access).status_code == 200
    assert resume().status_code == 200


# Every endpoint a Bearer token reaches: (method, path or a function of the session id, body).
BEARER = {
    "me": ("get", "/api/auth/me/", None),
    "sessions": ("get", SESSIONS, None),
    "delete its session": ("delete", lambda sid: f"{SESSIONS}{sid}/", None),
    "logout-all": ("post", LOGOUT_ALL, None),
    "password": ("post", PASSWORD_URL, {"old_password": NEW, "new_password": "third passphrase 7"}),
    "cookie password": ("post", COOKIE_PASSWORD,
                        {"old_password": NEW, "new_password": "third passphrase 7"}),
}


@pytest.mark.parametrize("endpoint", BEARER)
def test_an_access_token_from_before_the_change_is_refused_everywhere(endpoint, user, login,
                                                                      redis_conn, received):
    old = login(user)
    new = change(old["access_token"]).json()
    sid = sid_of(new)
    record = session_record(redis_conn, new["refresh_token"])
    received.clear()
    method, path, body = BEARER[endpoint]
    path = path(sid) if callable(path) else path
    response = getattr(APIClient(), method)(path, body, format="json",
                                            HTTP_AUTHORIZATION=f"Bearer {old['access_token']}",
                                            **APP)
    assert_error(response, 401, "session_revoked")
    assert session_record(redis_conn, new["refresh_token"]) == record
    assert dict(received) == {}
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert listed(new["access_token"]) == [sid]
    assert refresh(APIClient(), new["refresh_token"]).status_code == 200


# --- A password set outside the API: the shell, the admin, raw SQL ---

def shell(user) -> None:
    user.set_password(NEW)
    user.save()


def admin_sets_it(user) -> None:
    root = type(user).objects.create_superuser("root", "root@example.com", "root passphrase 1")
    admin = Client()
    admin.force_login(root)
    response = admin.post(f"/admin/accounts/user/{user.pk}/password/",
                          {"usable_password": "true", "password1": NEW, "password2": NEW})
    assert response.status_code == 302, response.content


def admin_own_change(user) -> None:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    admin = Client()
    admin.force_login(user)
    response = admin.post("/admin/password_change/", {
        "old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302, response.content


def raw_sql(user) -> None:
    table = connection.ops.quote_name(type(user)._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET password = %s WHERE id = %s",
                       [make_password(NEW), user.pk])


OUTSIDE = {"shell": shell, "admin": admin_sets_it, "admin's own change": admin_own_change,
           "raw SQL": raw_sql}


@pytest.mark.parametrize("way", OUTSIDE)
def test_a_password_set_outside_the_api_lists_none_of_the_old_sessions(way, user, login,
                                                                       redis_conn):
    old = [login(user), login(user)]
    OUTSIDE[way](user)
    user.refresh_from_db()
    assert user.check_password(NEW)
    fresh = log_in(user, NEW)
    assert listed(fresh["access_token"]) == [sid_of(fresh)]
    for pair in old:
        assert_error(me(APIClient(), pair["access_token"]), 401, "session_revoked")
        assert_error(refresh(APIClient(), pair["refresh_token"]), 401, "session_revoked")
        assert_gone_from_redis(redis_conn, user, sid_of(pair))  # its refused use removed it
    assert index_members(redis_conn, user.pk) == {sid_of(fresh).encode()}
    assert refresh(APIClient(), fresh["refresh_token"]).status_code == 200


# --- A reset link ---

def reset(user, password: str = NEW):
    """POST the confirmation of a reset link made for `user` (as the database holds it: the
    link covers the last login)."""
    user.refresh_from_db()
    link = {"uid": urlsafe_base64_encode(str(user.pk).encode()),
            "token": default_token_generator.make_token(user)}
    return APIClient().post(CONFIRM, {**link, "new_password": password}, format="json")


def test_a_reset_removes_every_session_and_lists_none_of_them(user, login, redis_conn, received,
                                                             django_capture_on_commit_callbacks):
    old = [login(user) for _ in range(3)]
    received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reset(user).status_code == 204
    assert session_keys(redis_conn, user.pk) == [] and index_keys(redis_conn, user.pk) == []
    assert ended_by(received, "password_change") == {sid_of(pair) for pair in old}
    for pair in old:
        assert_error(me(APIClient(), pair["access_token"]), 401, "session_revoked")
        assert_error(refresh(APIClient(), pair["refresh_token"]), 401, "session_revoked")
    fresh = log_in(user, NEW)
    assert listed(fresh["access_token"]) == [sid_of(fresh)]


@pytest.mark.parametrize("count", [3, MANY], ids=["a few", "thousands"])
def test_a_login_with_the_new_password_around_a_reset_survives_it(
        user, login, redis_conn, count, received, django_capture_on_commit_callbacks):
    old = login(user)
    add_sessions(user, count - 1)
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        assert reset(user).status_code == 204
    # Logged in with the new password before the reset's removal of the old sessions ran.
    fresh = log_in(user, NEW)
    received.clear()
    for callback in after_commit:
        callback()
    (kept,) = session_keys(redis_conn, user.pk)
    assert kept.decode().endswith(f":s:{sid_of(fresh)}")
    assert index_members(redis_conn, user.pk) == {sid_of(fresh).encode()}
    assert len(ended_by(received, "password_change")) == count
    assert sid_of(fresh) not in ended_by(received, "password_change")
    assert listed(fresh["access_token"]) == [sid_of(fresh)]
    assert refresh(APIClient(), fresh["refresh_token"]).status_code == 200
    assert_error(refresh(APIClient(), old["refresh_token"]), 401, "session_revoked")
