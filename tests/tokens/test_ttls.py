"""Every Redis key carries a TTL, no longer than what it protects (README: "Every Redis key
carries a TTL equal to what it protects"), after every operation that writes one."""

from datetime import datetime, timedelta, timezone

import pytest
from django.test import override_settings

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, OBTAIN, SESSIONS, assert_error, change_password, redis_keys, refresh,
    session_keys,
)
from tokens import clock, jwt, store
from tokens.conf import parse_rate, token_settings

pytestmark = pytest.mark.django_db

# Redis counts down in real time and the app computes TTLs from its own clock: both tick
# together, so they agree to within the milliseconds between a write and this check.
SLACK_MS = 1000
THROTTLE_SETTINGS = {"username": "LOGIN_FAILURES_PER_USERNAME", "ip": "LOGIN_FAILURES_PER_IP",
                     "device": "LOGIN_FAILURES_PER_DEVICE",
                     "reset_email": "PASSWORD_RESETS_PER_EMAIL",
                     "reset_ip": "PASSWORD_RESETS_PER_IP"}


def ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def check_every_key(redis_conn, *, index_fits: bool = False) -> list[bytes]:
    """Scan ALL keys: each has a TTL no longer than what it protects. Returns the keys.
    A user's index lives at least as long as each session it lists and at most the idle
    lifetime; with `index_fits`, at most as long as its longest-lived session (see
    test_the_index_shrinks_when_its_longest_lived_session_ends)."""
    now_ms = clock.now_ms()
    keys = redis_keys(redis_conn)
    sessions = {k: redis_conn.pttl(k) for k in keys if b":tokens:{" in k and b":s:" in k}
    for key in keys:
        ttl = redis_conn.pttl(key)
        assert ttl > 0, (key, ttl)
        if key in sessions:
            exp, absolute = (int(v) for v in redis_conn.hmget(key, "exp", "abs"))
            # Until its newest refresh token expires: idle lifetime, capped by the absolute.
            assert exp <= absolute, key
            assert ttl <= exp * 1000 - now_ms + SLACK_MS, (key, ttl)
            assert ttl <= ms(token_settings.REFRESH_TOKEN_LIFETIME) + SLACK_MS, (key, ttl)
            index, sid = key.split(b":s:")
            assert redis_conn.sismember(index + b":sessions", sid), key  # listed
        elif key.endswith(b":sessions"):
            prefix = key[: -len(b"sessions")] + b"s:"
            members = [sessions.get(prefix + sid, 0) for sid in redis_conn.smembers(key)]
            # As long as the user's longest-lived session (listing every live one), no longer.
            assert members and ttl >= max(members) - SLACK_MS, (key, ttl, members)
            assert ttl <= ms(token_settings.REFRESH_TOKEN_LIFETIME) + SLACK_MS, (key, ttl)
            if index_fits:
                assert ttl <= max(members) + SLACK_MS, (key, ttl, members)
        elif b":x:" in key:
            # A reuse mark: as long as its ended session would have lived, no longer.
            assert ttl <= ms(token_settings.REFRESH_TOKEN_LIFETIME) + SLACK_MS, (key, ttl)
        elif b":a:" in key:
            # An abandoned login's mark: as long as its late write could still run.
            assert ttl <= store.sessions.ABANDONED_MARK_MS + SLACK_MS, (key, ttl)
        elif b":tokens:throttle:" in key:
            scope = key.split(b":throttle:")[1].split(b":")[0].decode()
            window = parse_rate(getattr(token_settings, THROTTLE_SETTINGS[scope]))[1]
            assert ttl <= window * 1000 + SLACK_MS, (key, ttl)
        else:
            pytest.fail(f"a key the token service does not write: {key!r}")
    return keys


class Clock:
    """Moves the app's clock (time-machine) and Redis's with it: Redis counts TTLs down in
    real time, so each key's TTL is shortened by the time travelled, as Redis would have
    done, and a key whose TTL runs out meanwhile is gone."""

    def __init__(self, time_machine, redis_conn):
        self.time_machine, self.redis_conn = time_machine, redis_conn
        self.start = datetime.now(tz=timezone.utc)
        self.offset = timedelta(0)
        time_machine.move_to(self.start)

    def at(self, days: float) -> None:
        delta = ms(timedelta(days=days) - self.offset)
        assert delta >= 0, "the clock only moves forward"
        self.offset = timedelta(days=days)
        self.time_machine.move_to(self.start + self.offset)
        for key in redis_keys(self.redis_conn):
            ttl = self.redis_conn.pttl(key)
            if ttl > delta:
                self.redis_conn.pexpire(key, ttl - delta)
            elif ttl > 0:
                self.redis_conn.delete(key)


@pytest.fixture
def moving_clock(time_machine, redis_conn):
    return Clock(time_machine, redis_conn)


def bearer(pair) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {pair['access_token']}"}


def test_every_key_has_a_ttl_no_longer_than_what_it_protects_after_every_operation(
    api, client, user, login, redis_conn, moving_clock
):
    api.post(OBTAIN, {"username": "alice", "password": "wrong"}, format="json")
    assert len(check_every_key(redis_conn)) == 2  # the username's and the address's
    client.post("/admin/login/", {"username": "alice", "password": "wrong again"})
    check_every_key(redis_conn)
    first = login(user)
    check_every_key(redis_conn)
    moving_clock.at(days=5)
    second = login(user)
    check_every_key(redis_conn)
    first = refresh(api, first["refresh_token"]).json()
    check_every_key(redis_conn)
    moving_clock.at(days=10)
    third = login(user)
    check_every_key(redis_conn)
    first = refresh(api, first["refresh_token"]).json()
    check_every_key(redis_conn)
    third_id = jwt.decode(third["refresh_token"], typ=jwt.REFRESH).sid
    assert api.delete(f"{SESSIONS}{third_id}/", **bearer(first)).status_code == 204
    check_every_key(redis_conn)
    moving_clock.at(days=11)
    fourth = login(user)
    check_every_key(redis_conn)
    assert api.post(LOGOUT, {"refresh_token": fourth["refresh_token"]},
                    format="json").status_code == 204
    check_every_key(redis_conn)
    moving_clock.at(days=12)
    second = refresh(api, second["refresh_token"]).json()
    response = change_password(api, second["access_token"])
    assert response.status_code == 200
    check_every_key(redis_conn)
    assert api.post(LOGOUT_ALL, **bearer(response.json())).status_code == 204
    assert check_every_key(redis_conn) == []  # the throttle keys' minute is long over


def test_no_session_outlives_its_absolute_lifetime(api, user, login, redis_conn, moving_clock):
    pair = login(user)
    absolute_ms = clock.now_ms() + ms(token_settings.SESSION_MAX_LIFETIME)
    limit = token_settings.SESSION_MAX_LIFETIME.total_seconds() / 86400
    for days in (20, 45, 70, limit - 10, limit - 1, limit - 0.1, limit - 0.001):
        moving_clock.at(days)
        response = refresh(api, pair["refresh_token"])
        assert response.status_code == 200, days
        pair = response.json()
        for key in check_every_key(redis_conn, index_fits=True):
            assert redis_conn.pttl(key) <= absolute_ms - clock.now_ms() + SLACK_MS, days
    moving_clock.at(limit - 0.0005)
    # A password change near the limit starts a new generation, not a new lifetime.
    response = change_password(api, pair["access_token"])
    assert response.status_code == 200
    for key in check_every_key(redis_conn, index_fits=True):
        assert redis_conn.pttl(key) <= absolute_ms - clock.now_ms() + SLACK_MS
    moving_clock.at(limit)
    assert check_every_key(redis_conn) == []


@pytest.mark.parametrize("end", ["logout", "delete", "reuse"])
@override_settings(TOKENS={"ACCESS_TOKEN_LIFETIME": timedelta(days=2)})
def test_the_index_shrinks_when_its_longest_lived_session_ends(api, user, login, redis_conn,
                                                              moving_clock, end):
    older = login(user)
    moving_clock.at(days=1)
    newer = login(user)  # lives a day longer: the index now lives as long as it does
    successor = refresh(api, newer["refresh_token"]).json()
    check_every_key(redis_conn, index_fits=True)
    if end == "logout":
        response = api.post(LOGOUT, {"refresh_token": successor["refresh_token"]},
                            format="json")
        assert response.status_code == 204
    elif end == "delete":
        newer_id = jwt.decode(newer["refresh_token"], typ=jwt.REFRESH).sid
        assert api.delete(f"{SESSIONS}{newer_id}/", **bearer(older)).status_code == 204
    else:
        moving_clock.at(days=1.001)  # past the leeway
        assert_error(refresh(api, newer["refresh_token"]), 401, "token_reused")
    assert len(session_keys(redis_conn)) == 1  # the older one
    check_every_key(redis_conn, index_fits=True)
