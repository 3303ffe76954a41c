"""POST /api/auth/password/: other sessions end, this one continues under the same id."""

import io

import pytest
from django.core.cache import caches
from django.test import override_settings

from tests.helpers import PASSWORD, assert_error, me, refresh, unreachable_caches
from tokens import jwt

pytestmark = pytest.mark.django_db

URL = "/api/auth/password/"
NEW = "a much better passphrase 42"


def change(api, access, old=PASSWORD, new=NEW):
    return api.post(URL, {"old_password": old, "new_password": new}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {access}")


def test_password_change_keeps_this_session_and_ends_the_others(api, user, login):
    current, other = login(user), login(user)
    response = change(api, current["access_token"])
    assert response.status_code == 200
    new = response.json()
    assert "no-store" in response["Cache-Control"]
    # Every token issued before the change is refused, the caller's own included.
    assert_error(me(api, current["access_token"]), 401, "session_revoked")
    assert_error(refresh(api, current["refresh_token"]), 401, "session_revoked")
    assert_error(refresh(api, other["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, other["access_token"]), 401, "session_revoked")
    # The caller goes on, in the same session.
    sessions = api.get("/api/auth/sessions/",
                       HTTP_AUTHORIZATION=f"Bearer {new['access_token']}").json()
    assert len(sessions) == 1 and sessions[0]["current"]
    assert refresh(api, new["refresh_token"]).status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW)


def stored_session(redis_conn, user, sid) -> tuple[dict, set]:
    """The session's hash as stored, and the ids the user's index lists."""
    key = caches["default"].make_key
    record = redis_conn.hgetall(key(f"tokens:{{{user.pk}}}:s:{sid}"))
    members = redis_conn.smembers(key(f"tokens:{{{user.pk}}}:sessions"))
    return ({k.decode(): v.decode() for k, v in record.items()},
            {m.decode() for m in members})


def test_replaying_a_pre_change_refresh_token_does_not_end_the_new_session(api, user, login,
                                                                          redis_conn):
    pair = login(user)
    new = change(api, pair["access_token"]).json()
    after_change = jwt.decode(new["refresh_token"], typ=jwt.REFRESH)
    # An earlier generation: the session has ended for it, but no reuse is declared.
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    record, index = stored_session(redis_conn, user, after_change.sid)
    assert (record["gen"], record["cur"]) == (str(after_change.gen), after_change.jti)
    assert index == {after_change.sid}
    assert refresh(api, new["refresh_token"]).status_code == 200


def test_wrong_old_password_is_a_400_and_changes_nothing(api, user, login):
    pair = login(user)
    response = change(api, pair["access_token"], old="not it")
    assert_error(response, 400, "invalid")
    assert "old_password" in response.json()["errors"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert me(api, pair["access_token"]).status_code == 200


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123", "alice1234"])
def test_weak_new_password_is_a_400_with_validator_messages(api, user, login, weak):
    response = change(api, login(user)["access_token"], new=weak)
    assert_error(response, 400, "invalid")
    assert response.json()["errors"]["new_password"]


def test_password_change_needs_a_bearer_token(api):
    assert_error(api.post(URL, {"old_password": PASSWORD, "new_password": NEW}, format="json"),
                 401, "not_authenticated")


def test_missing_fields_are_a_400(api, user, login):
    response = api.post(URL, {}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {login(user)['access_token']}")
    assert_error(response, 400, "invalid")
    assert set(response.json()["errors"]) == {"old_password", "new_password"}


def test_redis_down_during_change_keeps_the_old_password(api, user, login, settings):
    pair = login(user)
    settings.TOKENS = {"CHECK_SESSION_ON_ACCESS": False}  # reach the view without Redis
    with override_settings(CACHES=unreachable_caches()):
        assert change(api, pair["access_token"]).status_code == 503
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_endpoint_is_in_the_schema(api):
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert "post" in paths["/api/auth/password/"]


def test_the_index_outlives_the_restarted_session(api, user, login, redis_conn):
    pair = login(user)
    index = next(k for k in redis_conn.scan_iter() if k.endswith(b":sessions"))
    redis_conn.pexpire(index, 10_000)  # as if the index were about to expire
    new = change(api, pair["access_token"]).json()
    session = next(k for k in redis_conn.scan_iter() if b":s:" in k)
    assert redis_conn.ttl(index) >= redis_conn.ttl(session) - 1
    api.post("/api/auth/logout-all/", HTTP_AUTHORIZATION=f"Bearer {new['access_token']}")
    assert_error(refresh(api, new["refresh_token"]), 401, "session_revoked")


def test_change_on_an_ended_session_changes_nothing(api, user, login, settings):
    settings.TOKENS = {"CHECK_SESSION_ON_ACCESS": False}  # let the ended session's token in
    ended, other = login(user), login(user)
    api.post("/api/auth/logout/", {"refresh_token": ended["refresh_token"]}, format="json")
    assert_error(change(api, ended["access_token"]), 401, "session_revoked")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert refresh(api, other["refresh_token"]).status_code == 200


# --- A re-hash of the same password (a Django upgrade raising the work factor) ---

BEFORE = ["tests.hashers.PBKDF2Before"]
AFTER = ["tests.hashers.PBKDF2After"]


def iterations(user) -> int:
    user.refresh_from_db()
    return int(user.password.split("$")[1])


@pytest.fixture
def rehashed_user(make_user):
    with override_settings(PASSWORD_HASHERS=BEFORE):
        yield make_user(username="dave")


def test_a_work_factor_upgrade_on_login_ends_no_session(rehashed_user, login, api):
    with override_settings(PASSWORD_HASHERS=BEFORE):
        first, second = login(rehashed_user), login(rehashed_user)
    assert iterations(rehashed_user) == 1_000
    with override_settings(PASSWORD_HASHERS=AFTER):
        third = login(rehashed_user)  # Django re-hashes the password here
        assert iterations(rehashed_user) == 2_000
        for pair in (first, second, third):
            assert me(api, pair["access_token"]).status_code == 200
            assert refresh(api, pair["refresh_token"]).status_code == 200
        sessions = api.get("/api/auth/sessions/",
                           HTTP_AUTHORIZATION=f"Bearer {third['access_token']}").json()
        assert len(sessions) == 3


def test_a_work_factor_upgrade_on_an_admin_login_ends_no_session(rehashed_user, login, api,
                                                                 client):
    rehashed_user.is_staff = True
    rehashed_user.save()
    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        response = client.post("/admin/login/", {"username": "dave", "password": PASSWORD})
        assert response.status_code == 302
        assert iterations(rehashed_user) == 2_000
        assert refresh(api, pair["refresh_token"]).status_code == 200


def test_a_real_password_change_after_a_rehash_still_ends_sessions(rehashed_user, login, api):
    from django.contrib.auth.hashers import make_password

    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        login(rehashed_user)
        type(rehashed_user).objects.filter(pk=rehashed_user.pk).update(
            password=make_password("another passphrase 9"))
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


def test_a_rehash_waits_when_the_store_is_down(rehashed_user):
    with override_settings(PASSWORD_HASHERS=AFTER, CACHES=unreachable_caches()):
        assert rehashed_user.check_password(PASSWORD)
    assert iterations(rehashed_user) == 1_000  # re-hashed on a later check instead
    with override_settings(PASSWORD_HASHERS=AFTER):
        assert rehashed_user.check_password(PASSWORD)
        assert iterations(rehashed_user) == 2_000


def test_workers_that_rehash_back_and_forth_end_no_session(rehashed_user, login, api):
    # A rolling deploy: old and new workers each re-hash to their own work factor.
    with override_settings(PASSWORD_HASHERS=BEFORE):
        idle = login(rehashed_user)
    for hashers in (AFTER, BEFORE, AFTER, BEFORE):
        with override_settings(PASSWORD_HASHERS=hashers):
            login(rehashed_user)
    assert iterations(rehashed_user) == 1_000
    assert me(api, idle["access_token"]).status_code == 200
    assert refresh(api, idle["refresh_token"]).status_code == 200


def test_two_rehashes_racing_from_one_hash_end_no_session(rehashed_user, login, api):
    User = type(rehashed_user)
    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    first, second = User.objects.get(pk=rehashed_user.pk), User.objects.get(pk=rehashed_user.pk)
    with override_settings(PASSWORD_HASHERS=AFTER):
        assert first.check_password(PASSWORD)
        assert second.check_password(PASSWORD)  # loaded before the first saved its hash
        stored = User.objects.get(pk=rehashed_user.pk).password
        assert first.password == stored and second.password == stored
        assert refresh(api, pair["refresh_token"]).status_code == 200


def test_a_rehash_never_undoes_a_password_change_made_meanwhile(rehashed_user, login, api):
    User = type(rehashed_user)
    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    checking = User.objects.get(pk=rehashed_user.pk)  # a login has loaded the old hash
    changed = User.objects.get(pk=rehashed_user.pk)
    changed.set_password(NEW)
    changed.save()
    with override_settings(PASSWORD_HASHERS=AFTER):
        assert not checking.check_password(PASSWORD)
    assert User.objects.get(pk=rehashed_user.pk).check_password(NEW)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


def test_purge_keeps_sessions_through_a_rehash(rehashed_user, login, api):
    from django.core.management import call_command

    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        login(rehashed_user)
        call_command("purge_tokens", stdout=io.StringIO(), stderr=io.StringIO())
        assert refresh(api, pair["refresh_token"]).status_code == 200
