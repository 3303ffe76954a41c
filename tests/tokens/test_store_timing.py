"""What the store's scripts record is dated when Redis ran them: a request that waited in a
stalled Redis (its reply lost, its client told 503) counts from when it really ran, not
from when it was sent. Shown by sending a script's `now` from the past, as a request
delayed that long in Redis's socket buffer would carry."""

import pytest

from tests.helpers import index_keys, index_members, session_keys
from tokens import clock, store, users

pytestmark = pytest.mark.django_db

LEEWAY_MS = 10_000
STALL_MS = 11_000  # longer than the leeway


def new_session(user, sid="s1", jti="j1") -> None:
    now_ms = clock.now_ms()
    store.create_session(user_id=str(user.pk), session_id=sid, jti=jti, generation=1,
                         fingerprint=users.password_fingerprint(user), now_ms=now_ms,
                         expires_at=now_ms // 1000 + 3600, absolute_expires_at=now_ms // 1000 + 7200,
                         user_agent="", ip_address="")


def rotate(user, *, jti, new_jti, now_ms, key=""):
    return store.rotate(user_id=str(user.pk), session_id="s1", jti=jti, generation=1,
                        fingerprint=users.password_fingerprint(user), new_jti=new_jti,
                        now_ms=now_ms, idle_seconds=3600, leeway_ms=LEEWAY_MS, ip_address="",
                        idempotency_key=key, retry_window_ms=900_000).result


def test_a_rotation_that_waited_in_a_stall_is_dated_when_it_ran(user):
    new_session(user)
    late = rotate(user, jti="j1", new_jti="j2", now_ms=clock.now_ms() - STALL_MS)
    assert late.outcome == "rotated"
    assert late.issued_at_ms >= clock.now_ms() - 1000  # Redis's clock, not the sender's
    # A keyless retry right after recovery is inside the leeway of the rotation that ran.
    retry = rotate(user, jti="j1", new_jti="j3", now_ms=clock.now_ms())
    assert (retry.outcome, retry.jti) == ("replayed", "j2")


def test_a_rotation_sent_from_behind_is_dated_by_redis_to_the_millisecond(user, redis_conn):
    # Redis's TIME, seconds and microseconds, read just before and just after: what the
    # script records lies between (a clock that dropped or misread the microseconds would
    # date it up to a second early or late).
    def redis_ms() -> int:
        seconds, micros = redis_conn.time()
        return seconds * 1000 + micros // 1000

    new_session(user)
    before = redis_ms()
    late = rotate(user, jti="j1", new_jti="j2", now_ms=before - STALL_MS)
    assert before <= late.issued_at_ms <= redis_ms()


def test_an_abandoned_login_writes_no_session_whichever_runs_first(user, redis_conn):
    # Abandoned first, the late write after it: nothing is written.
    assert store.abandon_session(user_id=str(user.pk), session_id="s1") is False
    new_session(user)
    assert session_keys(redis_conn, user.pk) == [] and index_members(redis_conn) == set()
    # The write first, abandoned after: it is removed.
    new_session(user, sid="s2")
    assert store.abandon_session(user_id=str(user.pk), session_id="s2") is True
    assert session_keys(redis_conn, user.pk) == [] and index_members(redis_conn) == set()
    # Each mark lives a minute, no longer (no key outlives what it protects).
    marks = list(redis_conn.scan_iter(match="*:a:*"))
    assert len(marks) == 2
    assert all(0 < redis_conn.pttl(mark) <= store.sessions.ABANDONED_MARK_MS for mark in marks)


def test_an_abandoned_login_leaves_the_index_living_no_longer_than_the_sessions_left(
        user, redis_conn):
    now_ms = clock.now_ms()
    for sid, lifetime in (("kept", 600), ("lost", 3600)):
        store.create_session(user_id=str(user.pk), session_id=sid, jti=sid, generation=1,
                             fingerprint=users.password_fingerprint(user), now_ms=now_ms,
                             expires_at=now_ms // 1000 + lifetime,
                             absolute_expires_at=now_ms // 1000 + 7200, user_agent="",
                             ip_address="")
    assert store.abandon_session(user_id=str(user.pk), session_id="lost") is True
    (kept,) = session_keys(redis_conn, user.pk)
    (index,) = index_keys(redis_conn, user.pk)
    kept_ttl = redis_conn.pttl(kept)  # read first: the same expiry reads shorter later
    assert 0 < redis_conn.pttl(index) <= kept_ttl


def test_every_key_of_an_abandoned_login_has_a_bounded_ttl(user, redis_conn):
    from tests.tokens.test_ttls import check_every_key

    new_session(user, sid="kept")
    store.abandon_session(user_id=str(user.pk), session_id="lost")
    assert len(check_every_key(redis_conn)) == 3  # the kept session, its index, the mark
