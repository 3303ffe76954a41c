"""What lands in Redis, and how rotation behaves under concurrency."""

import time
from datetime import timedelta

import pytest
import redis
from django.test import Client, override_settings

from tests.helpers import (
    LOGOUT, PASSWORD, REFRESH, SESSIONS, caches_at, index_keys, index_members, redis_keys,
    run_together, session_keys,
)
from tests.servers import RedisServer
from tokens import clock, services, store, users

pytestmark = pytest.mark.django_db



def stored_values(redis_conn) -> list[bytes]:
    values = []
    for key in redis_keys(redis_conn):
        kind = redis_conn.type(key)
        if kind == b"hash":
            values += [*redis_conn.hkeys(key), *redis_conn.hvals(key)]
        elif kind == b"set":
            values += list(redis_conn.smembers(key))
        else:
            values.append(redis_conn.dump(key))
    return values


def test_redis_holds_no_token_and_no_signature(api, user, login, redis_conn):
    first = login(user)
    second = api.post(REFRESH, {"refresh_token": first["refresh_token"]}, format="json").json()
    blob = b"\n".join([*redis_keys(redis_conn), *stored_values(redis_conn)])
    for pair in (first, second):
        for token in (pair["access_token"], pair["refresh_token"]):
            header, payload, signature = token.split(".")
            assert token.encode() not in blob
            assert signature.encode() not in blob
            assert payload.encode() not in blob
    assert PASSWORD.encode() not in blob
    assert user.password.encode() not in blob


def test_every_key_expires_with_the_session(api, user, login, redis_conn):
    login(user)
    keys = redis_keys(redis_conn)
    assert len(keys) == 2  # the session and the user's index
    for key in keys:
        ttl = redis_conn.ttl(key)
        assert 30 * 86400 - 5 <= ttl <= 30 * 86400, (key, ttl)


@override_settings(TOKENS={"REFRESH_TOKEN_LIFETIME": timedelta(hours=1)})
def test_rotation_moves_the_expiry_with_the_idle_lifetime(api, user, login, redis_conn):
    pair = login(user)
    session_key = session_keys(redis_conn)[0]
    redis_conn.pexpire(session_key, 60_000)  # pretend most of the hour has passed
    api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
    assert 3590 <= redis_conn.ttl(session_key) <= 3600


def test_keys_go_through_the_configured_cache_key_function(api, user, login, redis_conn,
                                                          redis_server):
    caches = caches_at(redis_server.url)
    caches["default"]["KEY_PREFIX"] = "tenant-a"
    with override_settings(CACHES=caches):
        pair = login(user)
        keys = redis_keys(redis_conn)
        assert keys and all(k.startswith(b"tenant-a:") for k in keys)
        response = api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
        assert response.status_code == 200


def appending_key(key: str, key_prefix: str, version: int) -> str:
    """A cache key function that does not simply prepend: the scripts cannot build a
    session's key from its index entry, so they leave the index's TTL be."""
    return f"{key}#{key_prefix}:{version}"


def test_a_key_function_that_does_not_prepend_keeps_the_other_sessions_listed(
        api, user, login, redis_server):
    caches = caches_at(redis_server.url)
    caches["default"]["KEY_FUNCTION"] = f"{__name__}.appending_key"
    with override_settings(CACHES=caches):
        first, second = login(user), login(user)
        assert api.post(LOGOUT, {"refresh_token": first["refresh_token"]},
                        format="json").status_code == 204
        listed = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {second['access_token']}")
        assert [s["current"] for s in listed.json()] == [True]
        assert api.post(REFRESH, {"refresh_token": second["refresh_token"]},
                        format="json").status_code == 200


def test_expired_sessions_drop_out_of_the_index_on_listing(api, user, login, redis_conn):
    login(user), login(user)
    index_key = index_keys(redis_conn)[0]
    assert redis_conn.scard(index_key) == 2
    for key in session_keys(redis_conn):
        redis_conn.delete(key)  # as if both had expired in Redis
    fresh = login(user)
    sessions = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {fresh['access_token']}").json()
    assert len(sessions) == 1
    assert redis_conn.scard(index_key) == 1


def sessions_in_redis(redis_conn, user) -> tuple[int, int]:
    """How many session hashes the user has in Redis, and how many ids their index lists."""
    return len(session_keys(redis_conn, user.pk)), len(index_members(redis_conn, user.pk))


def race(token: str, threads: int) -> list:
    """Present one refresh token from several threads at once; each gets its own client."""
    def present(_):
        return Client().post(REFRESH, {"refresh_token": token}, content_type="application/json")

    return run_together(present, range(threads))


@pytest.mark.django_db(transaction=True)
def test_racing_tabs_inside_leeway_all_get_the_same_successor(user, login, api, redis_conn):
    token = login(user)["refresh_token"]
    results = race(token, threads=8)
    assert [r.status_code for r in results] == [200] * 8
    (successor,) = {r.json()["refresh_token"] for r in results}
    # The one successor is the session's current token, and the session did not fork.
    assert api.post(REFRESH, {"refresh_token": successor}, format="json").status_code == 200
    assert sessions_in_redis(redis_conn, user) == (1, 1)


@pytest.mark.django_db(transaction=True)
@override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)})
def test_racing_with_zero_leeway_has_exactly_one_winner(user, login, api, redis_conn):
    token = login(user)["refresh_token"]
    results = race(token, threads=8)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [401] * 7
    # The first loser is detected as reuse and ends the session; later ones hear so too.
    loser_codes = [r.json()["code"] for r in results if r.status_code == 401]
    assert loser_codes and set(loser_codes) == {"token_reused"}
    # The losers' replay ended the session, so the winner's token is dead too.
    winner = next(r for r in results if r.status_code == 200).json()
    response = api.post(REFRESH, {"refresh_token": winner["refresh_token"]}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "token_reused"
    assert sessions_in_redis(redis_conn, user) == (0, 0)


@override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)})
def test_a_retried_rotation_is_not_mistaken_for_reuse(user, login, redis_conn):
    # redis-py resends a command once after a timeout: the script may then run twice.
    from tokens import jwt, store, users

    claims = jwt.decode(login(user)["refresh_token"], typ=jwt.REFRESH)
    attempt = dict(user_id=claims.sub, session_id=claims.sid, jti=claims.jti,
                   generation=claims.gen, fingerprint=users.password_fingerprint(user),
                   new_jti="successor", now_ms=int(time.time() * 1000), idle_seconds=3600,
                   leeway_ms=0, ip_address="")
    first, second = store.rotate(**attempt).result, store.rotate(**attempt).result
    assert first.outcome == second.outcome == "rotated"
    assert (second.jti, second.expires_at) == (first.jti, first.expires_at)
    # The successor is the session's current token: spending it once more moves on.
    after = store.rotate(**{**attempt, "jti": "successor", "new_jti": "third"}).result
    assert (after.outcome, after.jti) == ("rotated", "third")
    assert sessions_in_redis(redis_conn, user) == (1, 1)


def test_only_the_store_package_reaches_redis():
    """One way in to the token cache: a second, unconfigured client is how the system this
    replaces lost every session. Nothing outside tokens/store/ resolves a cache or a client."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    reach = re.compile(r"\bcaches\[|get_client\(|get_redis_connection|StrictRedis|Redis\(|"
                       r"from_url\(|\bcache\.(get|set|add|delete)\(")
    offenders = [
        str(path.relative_to(root))
        for folder in ("tokens", "accounts", "config")
        for path in (root / folder).rglob("*.py")
        if "store" not in path.relative_to(root).parts and reach.search(path.read_text())
    ]
    assert offenders == []
    inside = [path.name for path in (root / "tokens" / "store").glob("*.py")
              if reach.search(path.read_text())]
    assert inside == ["connection.py"]


def test_sessions_work_through_a_unix_socket_as_make_serve_reaches_redis(api, user):
    # `make run` and `make serve` reach their local Redis through its Unix socket.
    server = RedisServer.start(unix_socket=True)
    try:
        with override_settings(CACHES=caches_at(server.socket_url)):
            pair = api.post("/api/auth/token/", {"username": user.username,
                                                 "password": PASSWORD}, format="json").json()
            renewed = api.post(REFRESH, {"refresh_token": pair["refresh_token"]},
                               format="json")
            assert renewed.status_code == 200
            access = renewed.json()["access_token"]
            listed = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {access}")
            assert listed.status_code == 200 and len(listed.json()) == 1
        through_socket = redis.Redis(unix_socket_path=str(server.directory / "redis.sock"))
        assert len(redis_keys(through_socket, "*tokens:{*}:s:*")) == 1
    finally:
        server.stop()


# --- A re-hash of the same password (lua/rehash.lua), at the store ---

def fp(n: int) -> str:
    """A password fingerprint as the store holds them (16 hex digits)."""
    return f"{n:016x}"


def born_with(user, sid: str, fingerprint: str, lifetime: int = 3600) -> None:
    """A session born with password fingerprint `fingerprint`, for `lifetime` seconds."""
    now_ms = clock.now_ms()
    store.create_session(user_id=str(user.pk), session_id=sid, jti=sid, generation=1,
                         fingerprint=fingerprint, now_ms=now_ms,
                         expires_at=now_ms // 1000 + lifetime,
                         absolute_expires_at=now_ms // 1000 + 7200, user_agent="",
                         ip_address="")


def record(redis_conn, user, sid: str) -> dict[str, str]:
    (key,) = session_keys(redis_conn, user.pk, sid)
    return {k.decode(): v.decode() for k, v in redis_conn.hgetall(key).items()}


def test_a_session_keeps_the_latest_rehashes_of_its_password_only(user, redis_conn):
    # Re-hashes racing from one hash, or a rolling deploy hashing back and forth: each adds
    # its fingerprint, and the session keeps the REHASHES_KEPT newest.
    born_with(user, "s1", fp(0))
    for n in range(1, store.REHASHES_KEPT + 2):
        assert store.add_fingerprint(user_id=str(user.pk), old=fp(0), new=fp(n)).result == 1
    kept = record(redis_conn, user, "s1")
    assert kept["fp"] == fp(0)
    assert kept["fpx"].split() == [fp(n) for n in range(2, store.REHASHES_KEPT + 2)]


def test_a_rehash_restamps_the_sessions_of_that_password_only(user, redis_conn):
    born_with(user, "other", fp(9))  # another password's
    born_with(user, "fallback", fp(2))  # the re-hashed password's, under a fallback key
    born_with(user, "current", fp(1))  # the re-hashed password's, under the current key
    written = store.add_fingerprint(user_id=str(user.pk), old=fp(1), new=fp(3),
                                    older_fingerprints=(fp(2),))
    assert written.result == 2
    assert {sid: (r["fp"], r.get("fpx", "")) for sid in ("other", "fallback", "current")
            if (r := record(redis_conn, user, sid))} == {
        "other": (fp(9), ""), "fallback": (fp(1), fp(3)), "current": (fp(1), fp(3))}


def assert_index_lives_no_longer_than(redis_conn, user, sid: str) -> None:
    (index,) = index_keys(redis_conn, user.pk)
    (kept,) = session_keys(redis_conn, user.pk, sid)
    kept_ttl = redis_conn.pttl(kept)  # read first: the same expiry reads shorter later
    assert 0 < redis_conn.pttl(index) <= kept_ttl


def test_sessions_ended_for_an_older_password_leave_the_index_no_longer_lived(user,
                                                                               redis_conn):
    born_with(user, "kept", fp(1), lifetime=600)
    born_with(user, "older", fp(0), lifetime=3600)
    assert store.end_sessions(user_id=str(user.pk), keep=(fp(1),)).result == ["older"]
    assert_index_lives_no_longer_than(redis_conn, user, "kept")


def test_a_purged_dead_session_leaves_the_index_no_longer_lived(user, redis_conn):
    born_with(user, "kept", users.password_fingerprint(user), lifetime=600)
    born_with(user, "dead", fp(0), lifetime=3600)  # born with an older password
    assert services.purge(batch_size=100, dry_run=False).dead_sessions == 1
    assert_index_lives_no_longer_than(redis_conn, user, "kept")


# --- A password change's restart of the caller's session (lua/restart.lua), at the store ---

def restart(user, *, generation: int = 1, now_ms: int | None = None):
    return store.restart(user_id=str(user.pk), session_id="s1", generation=generation,
                         fingerprint=fp(5), new_jti="j2",
                         now_ms=clock.now_ms() if now_ms is None else now_ms,
                         idle_seconds=3600).result


def test_a_restart_from_a_generation_the_session_has_left_is_stale(user, redis_conn):
    born_with(user, "s1", fp(1))
    assert restart(user, generation=2).outcome == "stale"  # another change came first
    assert record(redis_conn, user, "s1")["gen"] == "1"


def test_a_restart_at_the_sessions_absolute_end_finds_it_gone(user, redis_conn):
    born_with(user, "s1", fp(1))
    end_ms = int(record(redis_conn, user, "s1")["abs"]) * 1000
    assert restart(user, now_ms=end_ms).outcome == "gone"
    assert restart(user, now_ms=end_ms - 1).outcome == "rotated"  # a millisecond before


def test_a_restart_moves_the_sessions_and_its_index_expiry_to_the_new_one(user, redis_conn):
    born_with(user, "s1", fp(1), lifetime=600)
    assert restart(user).outcome == "rotated"  # idle lifetime 3600 s from now
    (key,) = session_keys(redis_conn, user.pk)
    (index,) = index_keys(redis_conn, user.pk)
    index_ttl = redis_conn.pttl(index)  # read first: the same expiry reads shorter later
    assert 3500_000 < redis_conn.pttl(key) <= index_ttl


def test_revoking_a_session_that_expired_drops_it_from_the_index(user, redis_conn):
    born_with(user, "s1", fp(1))
    born_with(user, "s2", fp(1))
    (key,) = session_keys(redis_conn, user.pk, "s1")
    redis_conn.delete(key)  # expired
    assert store.revoke(user_id=str(user.pk), session_id="s1").result is False
    assert index_members(redis_conn, user.pk) == {b"s2"}


def test_a_refresh_refused_for_an_older_password_leaves_the_index_no_longer_lived(
        user, redis_conn):
    # The password was set outside the API (a shell, the admin): the session born with the
    # older one is ended at its next refresh, and the index shrinks to the session left.
    born_with(user, "kept", fp(1), lifetime=600)
    born_with(user, "older", fp(0), lifetime=3600)
    rotation = store.rotate(user_id=str(user.pk), session_id="older", jti="older", generation=1,
                            fingerprint=fp(1), new_jti="n1", now_ms=clock.now_ms(),
                            idle_seconds=3600, leeway_ms=10_000, ip_address="",
                            idempotency_key="", retry_window_ms=900_000).result
    assert rotation.outcome == "gone"
    assert_index_lives_no_longer_than(redis_conn, user, "kept")


def test_a_rotation_at_the_sessions_absolute_end_ends_it(user, redis_conn):
    def rotate(sid: str, now_ms: int):
        return store.rotate(user_id=str(user.pk), session_id=sid, jti=sid, generation=1,
                            fingerprint=fp(1), new_jti=f"{sid}-next", now_ms=now_ms,
                            idle_seconds=3600, leeway_ms=10_000, ip_address="",
                            idempotency_key="", retry_window_ms=900_000).result

    born_with(user, "before", fp(1))
    born_with(user, "kept", fp(1), lifetime=600)
    born_with(user, "last", fp(1))
    end_ms = int(record(redis_conn, user, "last")["abs"]) * 1000
    assert rotate("before", end_ms - 1).outcome == "rotated"  # a millisecond before: 1 ms left
    assert rotate("last", end_ms).outcome == "gone"
    assert session_keys(redis_conn, user.pk, "last") == []
    assert index_members(redis_conn, user.pk) == {b"before", b"kept"}
    assert_index_lives_no_longer_than(redis_conn, user, "kept")

