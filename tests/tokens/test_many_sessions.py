"""A user with thousands of sessions (successful logins are not limited) must not make one
script stall Redis for everyone: every flow that ends or re-stamps many sessions works in
batches of SESSIONS_PER_SCRIPT, and its work grows linearly with the session count.

Counted, not timed: Redis's own SLOWLOG (every command, with its key count) and its command
statistics. The time each script takes is in `make bench-scripts` (bench/scripts.py)."""

import pytest
from django.contrib.auth.hashers import make_password

from tests.helpers import (LOGOUT_ALL, PASSWORD_URL, SESSIONS, add_sessions, index_keys,
                           index_members, session_keys)
from tokens import services, store
from tokens.types import EndReason

pytestmark = pytest.mark.django_db

NEW = "a much better passphrase 42"
# Over two batches and over the index size whose TTL each removal recomputes (SHRINK_MAX).
MANY = 2 * store.SESSIONS_PER_SCRIPT + 300


class Watch:
    """Every command Redis runs meanwhile (SLOWLOG with no threshold), and their counts."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.config_set("slowlog-log-slower-than", 0)
        self.conn.config_set("slowlog-max-len", 100_000)
        self.conn.slowlog_reset()
        self.conn.config_resetstat()
        return self

    def __exit__(self, *exc):
        self.conn.config_set("slowlog-log-slower-than", 10_000)
        self.conn.config_set("slowlog-max-len", 128)

    def scripts(self) -> list[int]:
        """The number of keys of each script run (EVALSHA's third argument)."""
        entries = self.conn.slowlog_get(100_000)
        found = []
        for entry in entries:
            words = entry["command"].split()
            if words[0].upper() in (b"EVALSHA", b"EVAL"):
                found.append(int(words[2]))
        return found

    def calls(self, command: str) -> int:
        stats = self.conn.info("commandstats")
        return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def test_a_password_change_ends_thousands_of_sessions_in_bounded_linear_batches(
        api, user, login, redis_conn):
    current = login(user)
    add_sessions(user, MANY)
    with Watch(redis_conn) as watch:
        response = api.post(PASSWORD_URL, {"old_password": "correct horse battery staple",
                                           "new_password": NEW}, format="json",
                            HTTP_AUTHORIZATION=f"Bearer {current['access_token']}")
        assert response.status_code == 200, response.content
        keys_per_script = watch.scripts()
        ttl_reads = watch.calls("pttl")
    # Every other session left Redis; the caller's goes on, alone in its index.
    assert len(session_keys(redis_conn, user.pk)) == 1
    assert len(index_members(redis_conn, user.pk)) == 1
    sessions = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
    assert [s["current"] for s in sessions.json()] == [True]
    # No script took more than one batch of sessions; the TTLs read stay linear (quadratic
    # work read one TTL per remaining session for each session it ended: ~750,000 here).
    assert max(keys_per_script) <= store.SESSIONS_PER_SCRIPT + 1, keys_per_script
    assert len(keys_per_script) >= MANY // store.SESSIONS_PER_SCRIPT
    assert ttl_reads <= 2 * MANY, ttl_reads
    # And the index lives no longer than the session it still lists.
    (index,) = index_keys(redis_conn, user.pk)
    (session,) = session_keys(redis_conn, user.pk)
    assert redis_conn.pttl(index) <= redis_conn.pttl(session) + 1000


def test_logout_everywhere_ends_thousands_of_sessions_in_bounded_batches(api, user, login,
                                                                         redis_conn):
    current = login(user)
    add_sessions(user, MANY)
    with Watch(redis_conn) as watch:
        response = api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {current['access_token']}")
        assert response.status_code == 204
        keys_per_script = watch.scripts()
        ttl_reads = watch.calls("pttl")
    assert session_keys(redis_conn, user.pk) == [] and index_keys(redis_conn, user.pk) == []
    assert max(keys_per_script) <= store.SESSIONS_PER_SCRIPT + 1, keys_per_script
    assert ttl_reads <= 2 * MANY, ttl_reads


def test_ending_all_sessions_counts_each_one_it_ended(user, login, redis_conn):
    login(user)
    add_sessions(user, MANY)
    count = services.revoke_all_sessions(user_id=user.pk, reason=EndReason.ADMIN, by="admin")
    assert count == MANY + 1
    assert session_keys(redis_conn, user.pk) == []


def test_a_rehash_restamps_thousands_of_sessions_in_bounded_batches(user, login, redis_conn):
    add_sessions(user, MANY)
    old_hash = user.password
    new_hash = make_password("correct horse battery staple")
    with Watch(redis_conn) as watch:
        services.keep_sessions_through_rehash(user_id=user.pk, old_hash=old_hash,
                                              new_hash=new_hash)
        keys_per_script = watch.scripts()
    assert max(keys_per_script) <= store.SESSIONS_PER_SCRIPT, keys_per_script
    # Every session accepts the new hash: none ends when the database holds it.
    user.password = new_hash
    user.save(update_fields=["password"])
    assert len(services.list_sessions(user=user)) == MANY


def test_ending_one_session_of_a_huge_index_reads_no_ttl_but_its_own(api, user, login,
                                                                   redis_conn):
    pair = login(user)
    add_sessions(user, 1200)
    sid = pair["access_token"] and services.list_sessions(user=user)[-1].id  # the oldest
    with Watch(redis_conn) as watch:
        assert services.end_session(user=user, session_id=sid, reason=EndReason.LOGOUT)
        ttl_reads = watch.calls("pttl")
    # An index over the shrink limit keeps its TTL: one removal reads no other TTL.
    assert ttl_reads == 0
    assert len(index_members(redis_conn, user.pk)) == 1200
