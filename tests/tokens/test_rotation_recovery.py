"""Outages must not become logouts: a retried refresh whose reply was lost gets the successor
the store recorded (Idempotency-Key), and a token whose rotation the store lost is adopted
(its parent claim); a thief's replay is still reuse. Each branch of the rotation script,
with what the store holds after it."""

import time
import uuid
from datetime import timedelta

import jwt as pyjwt
import pytest
import time_machine

from tests.helpers import (
    LOGOUT, ME, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, SESSIONS, assert_error, claims_of,
    index_members, session_keys, stored_hash,
)
from tokens.conf import token_settings

pytestmark = pytest.mark.django_db


def rotate(api, token: str, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(REFRESH, {"refresh_token": token}, format="json", **headers)


def session(redis_conn) -> dict:
    """The one session in the store, as text; {} if there is none."""
    keys = session_keys(redis_conn)
    if not keys:
        return {}
    assert len(keys) == 1
    return stored_hash(redis_conn, keys[0])


def test_a_retry_with_its_key_gets_the_recorded_successor_within_the_window(api, user, login,
                                                                             redis_conn):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    successor = rotate(api, first, key).json()["refresh_token"]  # the reply that got lost
    with time_machine.travel(timedelta(minutes=14)):
        retry = rotate(api, first, key)
        assert retry.status_code == 200
        assert retry.json()["refresh_token"] == successor  # the very same token
        stored = session(redis_conn)
        assert (stored["cur"], stored["prev"]) == (claims_of(successor)["jti"],
                                                  claims_of(first)["jti"])
        assert rotate(api, successor).status_code == 200  # and the session goes on


def test_a_keyed_replay_after_the_retry_window_is_reuse(api, user, login, redis_conn):
    # A thief who learnt a spent token and its key (a logged header) has RETRY_WINDOW at most.
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    successor = rotate(api, first, key).json()["refresh_token"]
    with time_machine.travel(timedelta(minutes=16)):
        assert_error(rotate(api, first, key), 401, "token_reused")
        assert session(redis_conn) == {}
        assert_error(rotate(api, successor), 401, "token_reused")


def test_a_replay_is_recorded_on_the_session(api, user, login, redis_conn):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    rotate(api, first, key)
    with time_machine.travel(timedelta(minutes=3)):
        api.post(REFRESH, {"refresh_token": first}, format="json", HTTP_IDEMPOTENCY_KEY=key,
                 REMOTE_ADDR="198.51.100.77")
        stored = session(redis_conn)
    assert stored["ip"] == "198.51.100.77"
    assert int(stored["last"]) > int(stored["rot"])


def test_racing_tabs_each_keep_their_own_retry(api, user, login):
    first = login(user)["refresh_token"]
    tab1, tab2 = str(uuid.uuid4()), str(uuid.uuid4())
    successor = rotate(api, first, tab1).json()["refresh_token"]
    with time_machine.travel(timedelta(seconds=2)):
        assert rotate(api, first, tab2).json()["refresh_token"] == successor  # reply lost
    with time_machine.travel(timedelta(minutes=1)):
        assert rotate(api, first, tab2).json()["refresh_token"] == successor
        assert rotate(api, first, tab1).json()["refresh_token"] == successor
        assert rotate(api, successor).status_code == 200


def test_a_key_recorded_for_an_older_token_opens_nothing(api, user, login, redis_conn):
    # As an older worker (one that did not know keys) leaves it during a rolling deploy:
    # the key is still there, but bound to the jti it was recorded for.
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    second = rotate(api, first, key).json()["refresh_token"]
    recorded = session(redis_conn)["ik"]
    rotate(api, second)
    redis_conn.hset(session_keys(redis_conn)[0], "ik", recorded)
    with time_machine.travel(timedelta(seconds=11)):
        assert_error(rotate(api, second, key), 401, "token_reused")


def test_the_key_may_be_sent_as_a_structured_field_string(api, user, login):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    successor = rotate(api, first, f'"{key}"').json()["refresh_token"]
    with time_machine.travel(timedelta(minutes=5)):
        assert rotate(api, first, key).json()["refresh_token"] == successor


@pytest.mark.parametrize("thief_key", [None, "another-key-0123456789", ""])
def test_a_replay_without_the_recorded_key_after_the_leeway_is_reuse(api, user, login,
                                                                     redis_conn, thief_key):
    first = login(user)["refresh_token"]
    successor = rotate(api, first, str(uuid.uuid4())).json()["refresh_token"]
    with time_machine.travel(timedelta(seconds=11)):
        if thief_key == "":
            assert_error(rotate(api, first, thief_key), 400, "invalid")
            return
        assert_error(rotate(api, first, thief_key), 401, "token_reused")
        assert session(redis_conn) == {} and index_members(redis_conn) == set()
        assert_error(rotate(api, successor), 401, "token_reused")


def test_the_key_reaches_back_only_to_the_last_rotation(api, user, login, redis_conn):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    second = rotate(api, first, key).json()["refresh_token"]
    rotate(api, second, str(uuid.uuid4()))
    with time_machine.travel(timedelta(seconds=11)):
        # The grandparent with its old key: the client moved on, so this is a thief.
        assert_error(rotate(api, first, key), 401, "token_reused")
        assert session(redis_conn) == {}


def test_a_rotation_without_a_key_clears_the_recorded_one(api, user, login):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    second = rotate(api, first, key).json()["refresh_token"]
    rotate(api, second)
    with time_machine.travel(timedelta(seconds=11)):
        assert_error(rotate(api, second, key), 401, "token_reused")


def test_the_store_keeps_only_a_hash_of_the_key(api, user, login, redis_conn):
    key = str(uuid.uuid4())
    rotate(api, login(user)["refresh_token"], key)
    stored = session(redis_conn)
    assert stored["ik"] and key not in str(stored) and key.encode() not in redis_conn.dump(
        session_keys(redis_conn)[0])


@pytest.mark.parametrize("bad", ["short", "x" * 256, "has space inside it!", '"unterminated',
                                 '"unterminated-0123456789', 'dangling-0123456789"',
                                 "tab\tinside-0123456789", "caf\u00e9-0123456789abcdef"])
def test_a_malformed_key_is_a_400(api, user, login, bad):
    first = login(user)["refresh_token"]
    response = rotate(api, first, bad)
    assert_error(response, 400, "invalid")
    assert "Idempotency-Key" in response.json()["errors"]
    assert rotate(api, first).status_code == 200  # nothing was spent


def test_a_token_whose_rotation_was_lost_is_adopted(api, user, login, redis_conn):
    first = login(user)["refresh_token"]
    session_key = session_keys(redis_conn)[0]
    before, ttl = redis_conn.dump(session_key), redis_conn.pttl(session_key)
    second = rotate(api, first).json()["refresh_token"]
    # The store loses that rotation (a failover to a replica that never got it).
    redis_conn.restore(session_key, ttl, before, replace=True)
    assert session(redis_conn)["cur"] == claims_of(first)["jti"]
    third = rotate(api, second)
    assert third.status_code == 200
    stored = session(redis_conn)
    assert (stored["cur"], stored["prev"]) == (claims_of(third.json()["refresh_token"])["jti"],
                                              claims_of(second)["jti"])
    with time_machine.travel(timedelta(seconds=11)):
        assert rotate(api, third.json()["refresh_token"]).status_code == 200
        # The parent the store had, presented afterwards: reuse.
        assert_error(rotate(api, first), 401, "token_reused")
        assert session(redis_conn) == {}


def test_two_lost_rotations_in_a_row_cannot_be_recovered(api, user, login, redis_conn):
    first = login(user)["refresh_token"]
    session_key = session_keys(redis_conn)[0]
    before, ttl = redis_conn.dump(session_key), redis_conn.pttl(session_key)
    second = rotate(api, first).json()["refresh_token"]
    third = rotate(api, second).json()["refresh_token"]
    redis_conn.restore(session_key, ttl, before, replace=True)
    assert_error(rotate(api, third), 401, "token_reused")
    assert session(redis_conn) == {}


def test_a_refresh_token_from_before_parent_claims_still_rotates(api, user, login):
    claims = claims_of(login(user)["refresh_token"])
    del claims["par"]
    legacy = pyjwt.encode(claims, token_settings.SIGNING_KEY, algorithm="HS256")
    assert rotate(api, legacy).status_code == 200


def test_a_parent_claim_of_the_wrong_type_is_invalid(api, user, login):
    claims = claims_of(login(user)["refresh_token"])
    for bad in (None, 5, ["x"]):
        forged = pyjwt.encode({**claims, "par": bad}, token_settings.SIGNING_KEY,
                              algorithm="HS256")
        assert_error(rotate(api, forged), 401, "token_invalid")


# --- The other writes a retry can meet: logout, ending a session, a password change ---

NEW = "a much better passphrase 42"


def change(api, access: str, key: str | None = None, old: str = PASSWORD, new: str = NEW):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(PASSWORD_URL, {"old_password": old, "new_password": new}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {access}", **headers)


def test_a_logout_retried_after_a_lost_reply_answers_as_the_first(api, user, login, redis_conn):
    pair, other = login(user), login(user)
    for _ in range(2):
        response = api.post(LOGOUT, {"refresh_token": pair["refresh_token"]}, format="json")
        assert response.status_code == 204
    assert len(index_members(redis_conn)) == 1
    assert rotate(api, other["refresh_token"]).status_code == 200


def test_ending_a_session_again_answers_as_the_first_request_did(api, user, login, redis_conn):
    current = login(user)
    login(user)  # the other session, ended twice below
    auth = {"HTTP_AUTHORIZATION": f"Bearer {current['access_token']}"}
    other_id = next(s["id"] for s in api.get(SESSIONS, **auth).json()
                    if not s["current"])
    for _ in range(2):
        assert api.delete(f"{SESSIONS}{other_id}/", **auth).status_code == 204
    assert len(index_members(redis_conn)) == 1
    assert rotate(api, current["refresh_token"]).status_code == 200


def test_a_password_change_retried_after_a_lost_reply_gets_the_same_pair(api, user, login):
    pair, other = login(user), login(user)
    key = str(uuid.uuid4())
    first = change(api, pair["access_token"], key)  # the reply that got lost
    assert first.status_code == 200
    with time_machine.travel(timedelta(minutes=2)):
        retry = change(api, pair["access_token"], key)
        assert retry.status_code == 200
        assert retry.json()["refresh_token"] == first.json()["refresh_token"]
        assert rotate(api, retry.json()["refresh_token"]).status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert_error(rotate(api, other["refresh_token"]), 401, "session_revoked")


def test_only_the_key_of_the_change_reopens_it(api, user, login):
    pair = login(user)
    assert change(api, pair["access_token"], str(uuid.uuid4())).status_code == 200
    for key in (None, str(uuid.uuid4())):
        assert_error(change(api, pair["access_token"], key), 401, "session_revoked")
        assert_error(api.get(ME, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}"),
                     401, "session_revoked")


def test_a_change_retried_after_its_successor_was_used_is_refused(api, user, login):
    pair = login(user)
    key = str(uuid.uuid4())
    new = change(api, pair["access_token"], key).json()
    assert rotate(api, new["refresh_token"]).status_code == 200  # the client got the reply
    assert_error(change(api, pair["access_token"], key), 401, "session_revoked")


def test_a_change_whose_database_write_rolled_back_is_made_again(api, user, login, redis_conn):
    from django.contrib.auth.hashers import make_password

    from tokens import clock, store, users
    from tokens.services.common import key_hash as _key_hash

    pair, other = login(user), login(user)
    claims = claims_of(pair["access_token"])
    key = str(uuid.uuid4())
    # The change's script ran after its request gave up (Redis stalled), and the database
    # rolled back: the session is at the next generation, for a hash nobody stored.
    store.restart(user_id=claims["sub"], session_id=claims["sid"], generation=claims["gen"],
                  fingerprint=users.fingerprint(make_password(NEW)), new_jti="lost",
                  now_ms=clock.now_ms(), idle_seconds=3600, idempotency_key=_key_hash(key))
    retry = change(api, pair["access_token"], key)
    assert retry.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert rotate(api, retry.json()["refresh_token"]).status_code == 200
    assert_error(rotate(api, other["refresh_token"]), 401, "session_revoked")


def test_the_key_of_a_change_that_stands_does_not_open_another_change(api, user, login):
    pair = login(user)
    key = str(uuid.uuid4())
    first = change(api, pair["access_token"], key).json()
    # Same old token and key, another body: not a retry of that change.
    response = change(api, pair["access_token"], key, old=NEW, new="yet another passphrase 7")
    assert_error(response, 401, "session_revoked")
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert rotate(api, first["refresh_token"]).status_code == 200


def test_a_change_retried_across_a_rehash_gets_the_same_pair(api, user, login):
    from django.test import override_settings

    pair = login(user)
    key = str(uuid.uuid4())
    md5 = "django.contrib.auth.hashers.MD5PasswordHasher"  # the one the test user has
    with override_settings(PASSWORD_HASHERS=["tests.hashers.PBKDF2Before", md5]):
        first = change(api, pair["access_token"], key).json()
    with override_settings(PASSWORD_HASHERS=["tests.hashers.PBKDF2After", md5]):
        relogin = api.post(OBTAIN, {"username": "alice", "password": NEW}, format="json")
        assert relogin.status_code == 200  # and Django re-hashed the new password
        user.refresh_from_db()
        assert "$2000$" in user.password
        retry = change(api, pair["access_token"], key)
        assert retry.status_code == 200, retry.content
        assert retry.json()["refresh_token"] == first["refresh_token"]


def test_a_reuse_whose_verdict_was_lost_is_still_reuse_when_resent(api, user, login):
    # redis-py resends a command once after a timeout: the second run finds the session gone,
    # and must still say reuse (and a client retrying later hears the same).
    from tokens import store

    first = login(user)["refresh_token"]
    rotate(api, first)
    claims = claims_of(first)
    with time_machine.travel(timedelta(seconds=11)):
        args = dict(user_id=claims["sub"], session_id=claims["sid"], jti=claims["jti"],
                    generation=claims["gen"], fingerprint="", new_jti="n",
                    now_ms=int(time.time() * 1000), idle_seconds=3600, leeway_ms=10_000,
                    ip_address="")
        from tokens import users

        args["fingerprint"] = users.password_fingerprint(user)
        assert store.rotate(**args).result.outcome == "reused"
        assert store.rotate(**args).result.outcome == "reused_before"
        assert_error(rotate(api, first), 401, "token_reused")


def test_a_key_a_replay_recorded_opens_one_retry_after_the_leeway_not_the_window(
        api, user, login, redis_conn):
    # A thief replays a spent token inside the leeway with a key of its own, to keep drawing
    # fresh tokens with it for the whole retry window while the victim is idle.
    first = login(user)["refresh_token"]
    successor = rotate(api, first, str(uuid.uuid4())).json()["refresh_token"]  # the victim
    thief = str(uuid.uuid4())
    with time_machine.travel(timedelta(seconds=5)):
        assert rotate(api, first, thief).status_code == 200  # inside the leeway: recorded
    with time_machine.travel(timedelta(seconds=11)):
        # Once, as a racing tab whose reply was lost would retry...
        assert rotate(api, first, thief).json()["refresh_token"] == successor
    with time_machine.travel(timedelta(seconds=12)):
        # ...and never again: the second try is reuse, and the session ends.
        assert_error(rotate(api, first, thief), 401, "token_reused")
        assert session(redis_conn) == {} and index_members(redis_conn) == set()
        assert_error(rotate(api, successor), 401, "token_reused")


def test_the_rotations_own_key_stays_open_for_the_window_beside_replays(api, user, login):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    successor = rotate(api, first, key).json()["refresh_token"]
    with time_machine.travel(timedelta(seconds=2)):
        assert rotate(api, first, str(uuid.uuid4())).status_code == 200  # a racing tab
    with time_machine.travel(token_settings.RETRY_WINDOW - timedelta(seconds=1)):
        for _ in range(2):  # a client retrying a lost reply as often as it must
            assert rotate(api, first, key).json()["refresh_token"] == successor
        assert rotate(api, successor).status_code == 200


def test_no_more_replay_keys_are_recorded_than_the_cap(api, user, login, redis_conn):
    first = login(user)["refresh_token"]
    rotate(api, first, str(uuid.uuid4()))
    tabs = [str(uuid.uuid4()) for _ in range(6)]
    for tab in tabs:
        assert rotate(api, first, tab).status_code == 200
    assert len(session(redis_conn)["rk"].split()) == 4
    with time_machine.travel(timedelta(seconds=11)):
        assert rotate(api, first, tabs[3]).status_code == 200  # recorded
        assert_error(rotate(api, first, tabs[4]), 401, "token_reused")  # over the cap
