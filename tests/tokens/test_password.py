"""POST /api/auth/password/: other sessions end, this one continues under the same id."""

import io
import time

import pytest
from django.test import Client, override_settings

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, SESSIONS,
    assert_error, change_password, index_keys, index_members, me, refresh, run_together,
    session_keys, session_record, unreachable_caches,
)
from tokens import jwt, services, store, users
from tokens.types import EndReason

pytestmark = pytest.mark.django_db


def test_a_change_retried_with_its_key_on_an_ended_session_is_session_revoked(api, user, login):
    # The retry check reads a session that is gone: the answer is the ended session's, not
    # a server error.
    pair = login(user)
    assert api.post(LOGOUT, {"refresh_token": pair["refresh_token"]},
                    format="json").status_code == 204
    response = change_password(api, pair["access_token"], "a-retried-change-0123456789")
    assert_error(response, 401, "session_revoked")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_keeps_this_session_and_ends_the_others(api, user, login):
    current, other = login(user), login(user)
    response = change_password(api, current["access_token"])
    assert response.status_code == 200
    new = response.json()
    assert "no-store" in response["Cache-Control"]
    # Every token issued before the change is refused, the caller's own included.
    assert_error(me(api, current["access_token"]), 401, "session_revoked")
    assert_error(refresh(api, current["refresh_token"]), 401, "session_revoked")
    assert_error(refresh(api, other["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, other["access_token"]), 401, "session_revoked")
    # The caller goes on, in the same session.
    sessions = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {new['access_token']}").json()
    assert len(sessions) == 1 and sessions[0]["current"]
    assert refresh(api, new["refresh_token"]).status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_replaying_a_pre_change_refresh_token_does_not_end_the_new_session(api, user, login,
                                                                          redis_conn):
    pair = login(user)
    new = change_password(api, pair["access_token"]).json()
    after_change = jwt.decode(new["refresh_token"], typ=jwt.REFRESH)
    # An earlier generation: the session has ended for it, but no reuse is declared.
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    record = session_record(redis_conn, new["refresh_token"])
    assert (record["gen"], record["cur"]) == (str(after_change.gen), after_change.jti)
    assert index_members(redis_conn, user.pk) == {after_change.sid.encode()}
    assert refresh(api, new["refresh_token"]).status_code == 200


def test_wrong_old_password_is_a_400_and_changes_nothing(api, user, login):
    pair = login(user)
    response = change_password(api, pair["access_token"], old="not it")
    assert_error(response, 400, "invalid")
    assert "old_password" in response.json()["errors"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert me(api, pair["access_token"]).status_code == 200


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123", "alice1234"])
def test_weak_new_password_is_a_400_with_validator_messages(api, user, login, weak):
    response = change_password(api, login(user)["access_token"], new=weak)
    assert_error(response, 400, "invalid")
    assert response.json()["errors"]["new_password"]


def test_password_change_needs_a_bearer_token(api):
    assert_error(api.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                          format="json"), 401, "not_authenticated")


def test_missing_fields_are_a_400(api, user, login):
    response = api.post(PASSWORD_URL, {}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {login(user)['access_token']}")
    assert_error(response, 400, "invalid")
    assert set(response.json()["errors"]) == {"old_password", "new_password"}


def test_redis_down_during_change_keeps_the_old_password(api, user, login, settings):
    pair = login(user)
    settings.TOKENS = {"CHECK_SESSION_ON_ACCESS": False}  # reach the view without Redis
    with override_settings(CACHES=unreachable_caches()):
        assert change_password(api, pair["access_token"]).status_code == 503
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_endpoint_is_in_the_schema(api):
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert "post" in paths[PASSWORD_URL]


def test_the_index_outlives_the_restarted_session(api, user, login, redis_conn):
    pair = login(user)
    index = index_keys(redis_conn)[0]
    redis_conn.pexpire(index, 10_000)  # as if the index were about to expire
    new = change_password(api, pair["access_token"]).json()
    session = session_keys(redis_conn)[0]
    assert redis_conn.ttl(index) >= redis_conn.ttl(session) - 1
    api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {new['access_token']}")
    assert_error(refresh(api, new["refresh_token"]), 401, "session_revoked")


def test_change_on_an_ended_session_changes_nothing(api, user, login, settings):
    settings.TOKENS = {"CHECK_SESSION_ON_ACCESS": False}  # let the ended session's token in
    ended, other = login(user), login(user)
    api.post(LOGOUT, {"refresh_token": ended["refresh_token"]}, format="json")
    assert_error(change_password(api, ended["access_token"]), 401, "session_revoked")
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
        sessions = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {third['access_token']}").json()
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


def test_a_password_change_leaves_its_session_no_fingerprint_of_the_old_password(
        rehashed_user, login, api, redis_conn):
    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        login(rehashed_user)  # re-hashed: the first session accepts the new hash too
        assert session_record(redis_conn, pair["refresh_token"])["fpx"]
        new = change_password(api, pair["access_token"]).json()
    rehashed_user.refresh_from_db()
    kept = session_record(redis_conn, new["refresh_token"])
    assert kept["fp"] == users.password_fingerprint(rehashed_user) and "fpx" not in kept


def test_a_refresh_after_a_rehash_stamps_the_session_with_the_new_hash_alone(
        rehashed_user, login, api, redis_conn):
    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        login(rehashed_user)  # re-hashed: the first session accepts both hashes
        new = refresh(api, pair["refresh_token"]).json()
    rehashed_user.refresh_from_db()
    stamped = session_record(redis_conn, new["refresh_token"])
    assert stamped["fp"] == users.password_fingerprint(rehashed_user) and "fpx" not in stamped


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
    changed.set_password(NEW_PASSWORD)
    changed.save()
    with override_settings(PASSWORD_HASHERS=AFTER):
        assert not checking.check_password(PASSWORD)
    assert User.objects.get(pk=rehashed_user.pk).check_password(NEW_PASSWORD)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


def test_purge_keeps_sessions_through_a_rehash(rehashed_user, login, api):
    from django.core.management import call_command

    with override_settings(PASSWORD_HASHERS=BEFORE):
        pair = login(rehashed_user)
    with override_settings(PASSWORD_HASHERS=AFTER):
        login(rehashed_user)
        call_command("purge_tokens", stdout=io.StringIO(), stderr=io.StringIO())
        assert refresh(api, pair["refresh_token"]).status_code == 200


# --- A password change racing a refresh of the same session ---


def race_change_and_refresh(pair: dict, old: str, new: str) -> tuple:
    """POST the password change and a refresh of the same session at once, each from its
    own thread and client; returns both responses."""
    requests = {
        "change": lambda client: client.post(
            PASSWORD_URL, {"old_password": old, "new_password": new},
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}"),
        "refresh": lambda client: client.post(
            REFRESH, {"refresh_token": pair["refresh_token"]}, content_type="application/json"),
    }
    changed, refreshed = run_together(lambda request: request(Client()), requests.values())
    return changed, refreshed


@pytest.mark.django_db(transaction=True)
def test_a_password_change_racing_a_refresh_leaves_one_consistent_session(api, user, login,
                                                                          redis_conn):
    password = PASSWORD
    for round_ in range(6):
        services.revoke_all_sessions(user_id=user.pk, reason=EndReason.COMMAND)
        pair = login(user) if round_ == 0 else api.post(
            OBTAIN, {"username": user.username, "password": password}, format="json").json()
        new_password = f"{NEW_PASSWORD} {round_}"
        changed, refreshed = race_change_and_refresh(pair, password, new_password)
        assert changed.status_code in (200, 401), changed.content
        assert refreshed.status_code in (200, 401), refreshed.content
        if refreshed.status_code == 401:
            assert refreshed.json()["code"] == "session_revoked"
        if changed.status_code == 200:
            # The change won, whatever the order: only its pair is good.
            password = new_password
            assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
            if refreshed.status_code == 200:
                assert_error(refresh(api, refreshed.json()["refresh_token"]), 401,
                             "session_revoked")
            assert refresh(api, changed.json()["refresh_token"]).status_code == 200
        else:
            # The change found the session gone from under it: nothing changed.
            assert changed.json()["code"] == "session_revoked"
            assert refreshed.status_code == 200
            assert refresh(api, refreshed.json()["refresh_token"]).status_code == 200
        user.refresh_from_db()
        assert user.check_password(password)
        assert len(session_keys(redis_conn, user.pk)) == 1  # never forked


@pytest.mark.parametrize("first", ["rotate", "restart"])
def test_the_rotate_and_restart_scripts_in_either_order_leave_the_change(user, login, first):
    # The two scripts a refresh and a password change run against one session: Redis runs
    # one, then the other. Whichever went first, the session ends at the new generation with
    # the change's token current, and the refresh's successor (if any) is refused.
    claims = jwt.decode(login(user)["refresh_token"], typ=jwt.REFRESH)
    old_fingerprint = users.password_fingerprint(user)
    now_ms = int(time.time() * 1000)
    common = dict(user_id=claims.sub, session_id=claims.sid, now_ms=now_ms, idle_seconds=3600)
    rotate = lambda jti, generation, new_jti: store.rotate(  # noqa: E731
        **common, jti=jti, generation=generation, fingerprint=old_fingerprint, new_jti=new_jti,
        leeway_ms=10_000, ip_address="").result
    restart = lambda: store.restart(  # noqa: E731
        **common, generation=claims.gen, fingerprint="new-password", new_jti="changed").result
    if first == "rotate":
        assert rotate(claims.jti, claims.gen, "refreshed").outcome == "rotated"
        assert restart().outcome == "rotated"
    else:
        assert restart().outcome == "rotated"
        assert rotate(claims.jti, claims.gen, "refreshed").outcome == "stale"
    assert store.is_active(user_id=claims.sub, session_id=claims.sid,
                           generation=claims.gen + 1, fingerprint="new-password")
    assert rotate("refreshed", claims.gen, "again").outcome == "stale"
    after = store.rotate(**common, jti="changed", generation=claims.gen + 1,
                         fingerprint="new-password", new_jti="next", leeway_ms=0,
                         ip_address="").result
    assert (after.outcome, after.jti) == ("rotated", "next")


def test_the_restart_script_run_twice_returns_the_same_rotation(user, login, redis_conn):
    # redis-py resends a command once after a timeout: the script may then run twice.
    claims = jwt.decode(login(user)["refresh_token"], typ=jwt.REFRESH)
    attempt = dict(user_id=claims.sub, session_id=claims.sid, generation=claims.gen,
                   fingerprint="new-password", new_jti="changed",
                   now_ms=int(time.time() * 1000), idle_seconds=3600)
    first, second = store.restart(**attempt).result, store.restart(**attempt).result
    assert first.outcome == second.outcome == "rotated"
    assert second == first
    assert store.is_active(user_id=claims.sub, session_id=claims.sid,
                           generation=claims.gen + 1, fingerprint="new-password")
    assert len(session_keys(redis_conn, user.pk)) == 1
