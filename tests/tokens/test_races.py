"""Races the store's scripts decide, each driven to the branch that decides it: two password
changes of one session, a purge that meets a password change or a re-hash, or a session that
ends under it, and a login limit's script run twice for one attempt."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests.helpers import (
    PASSWORD, PASSWORD_URL, claims_of, index_members, redis_keys, refresh, session_keys,
    session_record,
)
from tokens import clock, services, store, users
from tokens.exceptions import SessionRevoked
from tokens.store import maintenance
from tokens.types import ClientInfo

pytestmark = pytest.mark.django_db

NEW, THIRD = "a much better passphrase 42", "yet another passphrase 7"


def change(api, pair: dict, old: str, new: str) -> dict:
    response = api.post(PASSWORD_URL, {"old_password": old, "new_password": new}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    assert response.status_code == 200, response.content
    return response.json()


def test_of_two_password_changes_racing_on_one_session_the_later_changes_nothing(
        api, user, login, redis_conn):
    pair = login(user)
    # Both requests were authenticated, and read the user, before either changed anything.
    _, claims = services.authenticate_access(access_token=pair["access_token"])
    model = get_user_model()
    first, second = model.objects.get(pk=user.pk), model.objects.get(pk=user.pk)
    won = services.change_password(user=first, claims=claims, old_password=PASSWORD,
                                   new_password=NEW, client=ClientInfo())
    with pytest.raises(SessionRevoked):  # the store moved on: 'stale'
        services.change_password(user=second, claims=claims, old_password=PASSWORD,
                                 new_password=THIRD, client=ClientInfo())
    user.refresh_from_db()
    assert user.check_password(NEW)  # the later change rolled back
    stored = session_record(redis_conn, pair["refresh_token"])
    assert (stored["gen"], stored["cur"], stored["fp"]) == (
        "2", claims_of(won.refresh_token)["jti"], users.password_fingerprint(user))
    assert refresh(api, won.refresh_token).status_code == 200


# --- The purge reads a session, judges it, then ends it only if it is still what it read ---

def purge(fingerprints) -> store.PurgeReport:
    return store.purge(fingerprints=fingerprints, batch_size=100, dry_run=False)


def test_a_session_a_password_change_moved_on_mid_purge_is_kept(api, user, login, redis_conn):
    pair = login(user)
    latest = {}

    def fingerprints(user_ids):
        # After the purge read the session (the first password's), the user changes the
        # password twice on it, and the purge reads the database between the two: the
        # session looks dead, on a fingerprint it no longer has.
        moved = change(api, pair, PASSWORD, NEW)
        known = users.current_fingerprints(user_ids)
        latest.update(change(api, moved, NEW, THIRD))
        return known

    purge(fingerprints)
    user.refresh_from_db()
    stored = session_record(redis_conn, latest["refresh_token"])
    assert stored, "the purge ended a live session"
    assert stored["fp"] == users.password_fingerprint(user)
    assert index_members(redis_conn, user.pk) == {claims_of(pair["refresh_token"])["sid"].encode()}
    assert refresh(api, latest["refresh_token"]).status_code == 200


def test_a_session_a_rehash_reached_mid_purge_is_kept(api, user, login, redis_conn):
    pair = login(user)
    old_hash = user.password

    def fingerprints(user_ids):
        # After the purge read the session, a login re-hashes the same password (a new
        # preferred hasher): the session accepts the new hash before the database holds it.
        with override_settings(PASSWORD_HASHERS=["tests.hashers.PBKDF2Before",
                                                 "django.contrib.auth.hashers.MD5PasswordHasher"]):
            assert get_user_model().objects.get(pk=user.pk).check_password(PASSWORD)
        return users.current_fingerprints(user_ids)

    purge(fingerprints)
    user.refresh_from_db()
    assert user.password != old_hash
    stored = session_record(redis_conn, pair["refresh_token"])
    assert stored, "the purge ended a live session"
    assert (stored["fp"], stored["fpx"]) == (users.fingerprint(old_hash),
                                             users.password_fingerprint(user))
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_a_session_that_ends_between_the_purges_scan_and_its_read_is_skipped(
        user, login, redis_conn, monkeypatch):
    ended, kept = login(user)["refresh_token"], login(user)["refresh_token"]
    (ended_key,) = session_keys(redis_conn, user.pk, claims_of(ended)["sid"])
    scanned = len(redis_keys(redis_conn))
    scan = maintenance._scan_batches

    def scan_then_expire(conn, key, batch_size):
        for batch in scan(conn, key, batch_size):
            assert ended_key.decode() in batch
            redis_conn.delete(ended_key)  # its TTL runs out now, after SCAN listed it
            yield batch

    monkeypatch.setattr(maintenance, "_scan_batches", scan_then_expire)
    report = purge(users.current_fingerprints)
    assert report == store.PurgeReport(keys_scanned=scanned, stale_index_entries=1)
    assert index_members(redis_conn, user.pk) == {claims_of(kept)["sid"].encode()}
    assert session_record(redis_conn, kept)["cur"] == claims_of(kept)["jti"]


# --- Login limits: redis-py resends a script once after a timeout ---

def test_a_reserve_run_twice_for_one_attempt_counts_it_once(redis_conn):
    budget = store.Budget("username", "alice", limit=2, window_seconds=60)
    now_ms = clock.now_ms()

    def reserve(attempt: str) -> store.Refusal | None:
        return store.reserve_login_attempt(budgets=[budget], attempt=attempt, now_ms=now_ms)

    assert reserve("first") is None
    assert reserve("second") is None  # the budget is full now
    assert reserve("second") is None  # its resent run goes ahead, as the first run did
    (key,) = redis_keys(redis_conn, "*:throttle:username:*")
    assert redis_conn.zrange(key, 0, -1, withscores=True) == [(b"first", now_ms),
                                                              (b"second", now_ms)]
    refusal = reserve("third")
    assert refusal is not None and refusal.scopes == ("username",)
