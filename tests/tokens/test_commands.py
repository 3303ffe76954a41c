"""manage.py list_sessions, revoke_sessions and purge_tokens, against the real Redis."""

import io
import re
import secrets
import time
from collections import defaultdict
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.helpers import (
    PASSWORD, SESSIONS, assert_error, redis_keys, refresh, session_keys, session_record,
    unreachable_caches,
)
from tokens import services, store
from tokens.users import fingerprint, password_fingerprint

pytestmark = pytest.mark.django_db

# What must never reach an operator's terminal raw: C0/C1 controls and Unicode bidi controls.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_list_sessions_prints_a_table(user, login):
    login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.0.0.7")
    login(user, HTTP_USER_AGENT="curl/8")
    lines = run("list_sessions", "alice").splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "LAST"]
    assert len(lines) == 3
    assert any("Firefox/140" in line and "10.0.0.7" in line for line in lines)


def test_list_sessions_shows_control_and_bidi_characters_as_escapes(user, login):
    # Clear the screen, set the window title, then reverse the rest of the line; escaped, it
    # still fits the command's 40-character column.
    login(user, HTTP_USER_AGENT="\x1b[2J\x1b]0;x\x07\x9b\u202eevil\u2066",
          REMOTE_ADDR="10.0.0.7\x1b[8m")
    out = run("list_sessions", "alice")
    assert not UNSAFE.search(out.replace("\n", ""))
    assert "\\x1b[2J\\x1b]0;x\\x07\\x9b\\u202eevil\\u2066" in out


def test_list_sessions_without_sessions(user):
    assert "no live sessions" in run("list_sessions", "alice")


@pytest.mark.parametrize("command", ["list_sessions", "revoke_sessions"])
def test_unknown_user_is_a_one_line_error(command):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run(command, "nobody")


def test_revoke_sessions_ends_all_of_a_users_sessions(api, user, make_user, login):
    pairs = [login(user), login(user)]
    bob = login(make_user(username="bob"))
    assert "Revoked 2 session(s) of alice" in run("revoke_sessions", "alice")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert refresh(api, bob["refresh_token"]).status_code == 200


def test_revoke_sessions_can_end_just_one(api, user, login, redis_conn):
    first, second = login(user), login(user)
    first_id = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").json()
    first_id = next(s["id"] for s in first_id if s["current"])
    assert "Revoked 1 session(s)" in run("revoke_sessions", "alice", session=first_id)
    assert_error(refresh(api, first["refresh_token"]), 401, "session_revoked")
    assert refresh(api, second["refresh_token"]).status_code == 200
    with pytest.raises(CommandError, match="no live session"):
        run("revoke_sessions", "alice", session=first_id)


def test_commands_report_an_outage_as_an_error(user):
    with override_settings(CACHES=unreachable_caches()):
        with pytest.raises(CommandError, match="unavailable"):
            run("list_sessions", "alice")


def test_purge_removes_sessions_of_deleted_users_and_old_passwords(
    api, user, make_user, login, redis_conn, django_capture_on_commit_callbacks
):
    keep = login(user)
    bob, carol = make_user(username="bob"), make_user(username="carol")
    login(bob), login(carol)
    # Deleted and changed behind the app's back, so no hook ran.
    type(bob).objects.filter(pk=bob.pk)._raw_delete(using="default")
    type(carol).objects.filter(pk=carol.pk).update(password="changed-elsewhere")
    assert len(session_keys(redis_conn)) == 3

    dry = run("purge_tokens", "--dry-run")
    assert "Would remove 2 dead session(s)" in dry
    assert len(session_keys(redis_conn)) == 3

    out = run("purge_tokens", "--batch-size", "2")
    assert "Removed 2 dead session(s)" in out
    assert len(session_keys(redis_conn)) == 1
    assert refresh(api, keep["refresh_token"]).status_code == 200
    assert "Removed 0 dead session(s) and 0 stale" in run("purge_tokens")


def test_purge_drops_index_entries_of_ended_sessions(user, login, redis_conn):
    login(user), login(user)
    for key in session_keys(redis_conn):
        redis_conn.delete(key)
    assert "2 stale index entries" in run("purge_tokens")
    assert redis_keys(redis_conn) == []


def test_purge_restores_a_lost_expiry(user, login, redis_conn):
    login(user)
    (key,) = session_keys(redis_conn)
    redis_conn.persist(key)
    assert "restored 1 missing expiries" in run("purge_tokens")
    assert redis_conn.ttl(key) > 29 * 86400


def test_purge_removes_a_record_that_lost_its_expiry_after_its_end(user, login, redis_conn):
    login(user)
    (key,) = session_keys(redis_conn)
    redis_conn.persist(key)
    with time_machine.travel(timedelta(days=31)):  # past its end (30 days' refresh lifetime)
        run("purge_tokens")
    assert session_keys(redis_conn) == []


def rehash(user, new_hash: str) -> None:
    """A re-hash of the same password, as a login makes it: the sessions accept the new hash's
    fingerprint first, then the database holds it (no save hook runs)."""
    store.add_fingerprint(user_id=str(user.pk), old=fingerprint(user.password),
                          new=fingerprint(new_hash))
    get_user_model()._default_manager.filter(pk=user.pk).update(password=new_hash)


def test_purge_counts_a_rehashed_session_as_live(user, login, redis_conn):
    login(user)
    rehash(user, make_password(PASSWORD))
    report = services.purge(batch_size=100, dry_run=True)
    assert (report.keys_scanned, report.dead_sessions) == (2, 0)


def test_purge_spares_a_session_that_a_rehash_makes_live_while_it_runs(user, login, redis_conn):
    # The purge reads the sessions, then the users' fingerprints; a re-hash in between (its
    # fingerprint added to the session, then saved) makes the session look dead to it. The
    # script that ends it checks again, in Redis, and keeps it.
    login(user)
    new_hash = make_password(PASSWORD)

    def fingerprints_after_a_rehash(user_ids):
        rehash(user, new_hash)
        return {str(user.pk): (fingerprint(new_hash),)}

    store.purge(fingerprints=fingerprints_after_a_rehash, batch_size=100, dry_run=False)
    assert len(session_keys(redis_conn, user.pk)) == 1


def test_purge_never_touches_keys_outside_the_token_store(user, login, redis_conn):
    login(user)
    redis_conn.set("someone-else:key", "value")
    redis_conn.set(":1:tokens-not-ours", "value")
    run("purge_tokens")
    call_command("purge_tokens", "--all", "--noinput", stdout=io.StringIO())
    assert redis_conn.get("someone-else:key") == b"value"
    assert redis_conn.get(":1:tokens-not-ours") == b"value"


def test_purge_all_ends_every_session(api, user, make_user, login):
    pairs = [login(user), login(make_user(username="bob"))]
    assert "Ended 2 session(s)" in run("purge_tokens", "--all", "--noinput")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


def test_purge_all_asks_first(api, user, login, monkeypatch):
    pair = login(user)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Cancelled"):
        run("purge_tokens", "--all")
    assert refresh(api, pair["refresh_token"]).status_code == 200
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert "Ended 1 session(s)" in run("purge_tokens", "--all")


def test_purge_reports_progress_on_large_keyspaces(user, login):
    for _ in range(12):
        login(user)
    err = io.StringIO()
    call_command("purge_tokens", "--batch-size", "1", stdout=io.StringIO(), stderr=err)
    assert "... scanned" in err.getvalue()


def test_purge_rejects_a_bad_batch_size():
    with pytest.raises(CommandError, match="batch-size"):
        run("purge_tokens", "--batch-size", "0")


def test_purge_removes_sessions_of_users_deactivated_behind_the_apps_back(api, user, login):
    pair = login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no hook ran
    assert "Removed 1 dead session(s)" in run("purge_tokens")
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")



# The fields of a session record, as tokens/store/sessions.py writes them (checked against a real one).
FIELDS = ("uid", "gen", "fp", "cur", "prev", "rot", "exp", "abs", "created", "last", "ua", "ip")
DAY = 86400


class Keyspace:
    """Writes records in the store's shapes through one pipeline: fast enough for 30,000."""

    def __init__(self, redis_conn):
        self.pipe = redis_conn.pipeline(transaction=False)
        self.key = caches["default"].make_key
        self.now = int(time.time())
        self.listed: dict[str, set[str]] = defaultdict(set)  # index key -> session ids

    def index(self, uid) -> str:
        return self.key(f"tokens:{{{uid}}}:sessions")

    def record(self, uid, fingerprint: str) -> dict:
        now_ms = self.now * 1000
        return dict(zip(FIELDS, [uid, 1, fingerprint, secrets.token_urlsafe(16), "", now_ms,
                                 self.now + DAY, self.now + 3 * DAY, now_ms, now_ms, "pytest",
                                 "10.0.0.1"]))

    def session(self, uid, fingerprint: str, *, ttl: bool = True) -> str:
        sid = secrets.token_urlsafe(16)
        key = self.key(f"tokens:{{{uid}}}:s:{sid}")
        self.pipe.hset(key, mapping=self.record(uid, fingerprint))
        if ttl:
            self.pipe.expire(key, DAY)
        self.list(uid, sid)
        return key

    def list(self, uid, sid: str) -> None:
        self.listed[self.index(uid)].add(sid)

    def write(self) -> None:
        for index, sids in self.listed.items():
            self.pipe.sadd(index, *sids)
            self.pipe.expire(index, 3 * DAY)
        self.pipe.execute()


def test_purge_cleans_a_large_keyspace_exactly(api, user, make_user, login, redis_conn):
    pair = login(user)  # a real session: the records below have its fields
    assert set(session_record(redis_conn)) == set(FIELDS)
    users = [make_user(username=f"user{i}") for i in range(20)]
    inactive = make_user(username="inactive", is_active=False)
    space, old, gone = Keyspace(redis_conn), "0123456789abcdef", 10**6

    def owner(i):
        return users[i % len(users)]

    # Keep: live sessions of existing users with their current password; repair 500 of them.
    live = [space.session(owner(i).pk, password_fingerprint(owner(i))) for i in range(14_000)]
    lost_ttl = [space.session(owner(i).pk, password_fingerprint(owner(i)), ttl=False)
                for i in range(500)]
    # Remove: sessions of an older password, of deleted users, of a deactivated user, and
    # index entries whose session is gone.
    dead = [space.session(owner(i).pk, old) for i in range(5_000)]
    dead += [space.session(gone + i % 1_000, old) for i in range(5_000)]
    dead += [space.session(inactive.pk, password_fingerprint(inactive)) for _ in range(500)]
    for i in range(2_000):
        space.list(owner(i).pk, secrets.token_urlsafe(16))
    # Keep: throttle counters, keys of no known shape, and keys outside the prefix, even
    # those that look like dead sessions.
    for _ in range(2_000):
        throttle = space.key(f"tokens:throttle:ip:{secrets.token_hex(16)}")
        space.pipe.zadd(throttle, {"attempt": space.now * 1000})
        space.pipe.expire(throttle, 60)
    odd = [space.key(f"tokens:odd:{i}") for i in range(10)]
    outside = [f"someone-else:{i}" for i in range(1_000)]
    for key in odd + outside:
        space.pipe.set(key, "value")
    lookalikes = [f"other-app:1:tokens:{{{gone}}}:s:{i}" for i in range(1_000)]
    for key in lookalikes:
        space.pipe.hset(key, mapping=space.record(gone, old))
    space.write()
    everything = set(map(bytes.decode, redis_keys(redis_conn)))
    ours = len(everything) - len(outside) - len(lookalikes)
    assert len(everything) > 30_000

    out = run("purge_tokens", "--dry-run")
    assert out == (f"Scanned {ours} keys. Would remove 10500 dead session(s) and 2000 stale "
                   "index entries; would restore 500 missing expiries; left 10 unrecognised "
                   "key(s) alone.\n")
    assert redis_conn.dbsize() == len(everything) and redis_conn.ttl(lost_ttl[0]) == -1

    out = run("purge_tokens")
    emptied = {space.index(gone + i) for i in range(1_000)} | {space.index(inactive.pk)}
    scanned, rest = re.fullmatch(r"Scanned (\d+) keys\. (.*)\n", out).groups()
    # Index keys emptied by the purge before SCAN reached them are not scanned.
    assert ours - len(emptied) <= int(scanned) <= ours
    assert rest == ("Removed 10500 dead session(s) and 2000 stale index entries; restored 500 "
                    "missing expiries; left 10 unrecognised key(s) alone.")
    assert set(map(bytes.decode, redis_keys(redis_conn))) == (
        everything - set(dead) - emptied)
    live_ids = {key.rsplit(":", 1)[1] for key in live + lost_ttl}
    for index in {space.index(u.pk) for u in users}:
        assert {sid.decode() for sid in redis_conn.smembers(index)} == (
            space.listed[index] & live_ids)
    ttls = redis_conn.pipeline(transaction=False)
    for key in lost_ttl + odd + outside + lookalikes:
        ttls.ttl(key)
    ttls = ttls.execute()
    assert all(0 < ttl <= DAY for ttl in ttls[:len(lost_ttl)])
    assert set(ttls[len(lost_ttl):]) == {-1}  # untouched
    assert refresh(api, pair["refresh_token"]).status_code == 200
