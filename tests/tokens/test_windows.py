"""The edges of every time window the README states, on a clock that moves only when told:
the last moment inside a window is accepted and the next (1 ms later; 1 s where the window
counts whole seconds) is refused, with what the store holds after each. The numbers are the
README's (10 s, 15 min, 1 min, 30 and 90 days, 5 min, a year, 3 days), not read from the
settings, so that a default that drifts fails here too.

The app's clock stops ahead of real time. The scripts date what they record by the later of
the app's clock and Redis's (lua/lib/clock.lua), so the app's clock rules here, to the
millisecond, while Redis's runs on behind it."""

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import (
    LOGOUT, OBTAIN, PASSWORD, REFRESH, assert_error, claims_of, index_members, me, redis_keys,
    session_keys, session_record,
)
from tokens import background, clock, store, users
from tokens.api.clients import DEVICE_COOKIE
from tokens.api.cookies import PLAIN_COOKIE as COOKIE
from tokens.models import SecurityEvent
from tokens.services.common import key_hash

pytestmark = pytest.mark.django_db

SECOND, MINUTE, DAY = 1000, 60_000, 86_400_000  # in ms
LEEWAY = 10 * SECOND  # ROTATION_LEEWAY
RETRY_WINDOW = 15 * MINUTE
IDLE, ABSOLUTE = 30 * DAY, 90 * DAY  # REFRESH_TOKEN_LIFETIME, SESSION_MAX_LIFETIME
ACCESS = 5 * MINUTE  # ACCESS_TOKEN_LIFETIME
LOGIN_WINDOW = MINUTE  # "5/m", "20/m", "5/m"
DEVICE_COOKIE_AGE = 365 * DAY
RESET_TIMEOUT = 3 * DAY  # PASSWORD_RESET_TIMEOUT
AHEAD_S = 300  # how far ahead of real time the clock stops: longer than any test here takes
# Redis counts a TTL down in real time from the write: read back at once, it is short of
# what was set by the moments in between (milliseconds; this allows for a loaded machine).
TTL_SLACK = 10 * SECOND
COOKIE_REFRESH, COOKIE_LOGOUT = "/api/auth/cookie/refresh/", "/api/auth/cookie/logout/"
APP = {"HTTP_X_REQUESTED_WITH": "app"}
MODES = ["body", "cookie"]  # the same check behind both kinds of endpoint


class FrozenClock:
    """The app's clock, stopped at a whole second ahead of real time; `at` moves it on."""

    def __init__(self, time_machine):
        self.time_machine = time_machine
        self.start_s = int(time.time()) + AHEAD_S
        self.start_ms = self.start_s * 1000
        self.at(0)

    def at(self, ms: int, *, exact: bool = False) -> None:
        """Stop `ms` after the start. Half a millisecond later unless `exact`, so that the
        app's millisecond clock (a float times 1000, rounded down) reads `ms` itself."""
        moment = (datetime.fromtimestamp(self.start_s, timezone.utc)
                  + timedelta(milliseconds=ms, microseconds=0 if exact else 500))
        self.time_machine.move_to(moment, tick=False)
        assert clock.now_ms() == self.start_ms + ms

    def s(self, ms: int) -> int:
        """The epoch second `ms` after the start (as a token's `exp`, a session's `exp`)."""
        return self.start_s + ms // 1000


@pytest.fixture
def frozen(time_machine):
    return FrozenClock(time_machine)


def rotate(api, token: str, key: str | None = None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(REFRESH, {"refresh_token": token}, format="json", **headers, **extra)


def present(mode: str, token: str, path: str = "refresh", **extra):
    """POST refresh token `token` to the refresh (or logout) endpoint of `mode`, from a
    client of its own: the response, and the successor refresh token it hands out, if any."""
    client = APIClient()
    if mode == "body":
        response = client.post(REFRESH if path == "refresh" else LOGOUT,
                               {"refresh_token": token}, format="json", **extra)
        body = response.json() if response.content else {}
        return response, body.get("refresh_token", "")
    client.cookies[COOKIE] = token
    response = client.post(COOKIE_REFRESH if path == "refresh" else COOKIE_LOGOUT,
                           **APP, **extra)
    successor = response.cookies[COOKIE].value if COOKIE in response.cookies else ""
    return response, successor


def reuse_marks(redis_conn, token: str) -> list[bytes]:
    return redis_keys(redis_conn, f"*:x:{claims_of(token)['sid']}")


def assert_ended_by_reuse(redis_conn, user, token: str) -> None:
    """The session of `token` is gone from the store, out of the index, and marked reused."""
    sid = claims_of(token)["sid"]
    assert session_keys(redis_conn, user.pk, sid) == []
    assert sid.encode() not in index_members(redis_conn, user.pk)
    (mark,) = reuse_marks(redis_conn, token)
    assert 0 < redis_conn.pttl(mark) <= IDLE


def assert_ttl(redis_conn, token: str, ms: int) -> None:
    """The session of `token` lives `ms` in Redis from now, no longer."""
    (key,) = session_keys(redis_conn, claims_of(token)["sub"], claims_of(token)["sid"])
    assert ms - TTL_SLACK < redis_conn.pttl(key) <= ms


# --- ROTATION_LEEWAY: racing tabs, on refresh and on logout ---

@pytest.mark.parametrize("mode", MODES)
def test_a_replay_on_the_leeways_last_millisecond_gets_the_successor_and_one_later_is_reuse(
        api, user, login, redis_conn, frozen, mode):
    first = login(user)["refresh_token"]
    successor = rotate(api, first).json()["refresh_token"]
    rotated = session_record(redis_conn, first)
    assert int(rotated["rot"]) == frozen.start_ms  # the app's clock, ahead of Redis's
    frozen.at(LEEWAY)
    replay, again = present(mode, first, REMOTE_ADDR="198.51.100.7")
    assert replay.status_code == 200 and again == successor
    replayed = session_record(redis_conn, first)
    assert ({k: replayed[k] for k in ("cur", "prev", "rot")}
            == {k: rotated[k] for k in ("cur", "prev", "rot")})
    assert (int(replayed["last"]), replayed["ip"]) == (frozen.start_ms + LEEWAY, "198.51.100.7")
    frozen.at(LEEWAY + 1)
    assert_error(present(mode, first)[0], 401, "token_reused")
    assert_ended_by_reuse(redis_conn, user, first)
    assert_error(rotate(api, successor), 401, "token_reused")


@pytest.mark.parametrize("mode", MODES)
def test_a_logout_with_the_just_spent_token_is_plain_to_the_leeways_end_and_reuse_after(
        api, user, login, redis_conn, frozen, mode):
    inside, outside = (login(user)["refresh_token"] for _ in range(2))
    for token in (inside, outside):
        assert rotate(api, token).status_code == 200
    frozen.at(LEEWAY)
    assert present(mode, inside, "logout")[0].status_code == 204
    assert session_record(redis_conn, inside) == {} and reuse_marks(redis_conn, inside) == []
    assert not SecurityEvent.objects.exists()
    frozen.at(LEEWAY + 1)
    assert present(mode, outside, "logout")[0].status_code == 204
    assert_ended_by_reuse(redis_conn, user, outside)
    (event,) = SecurityEvent.objects.all()
    assert (event.kind, event.session_id) == ("reuse", claims_of(outside)["sid"])


# --- RETRY_WINDOW: the rotation's own Idempotency-Key, and racing tabs' keys ---

def test_a_retry_with_the_rotations_key_gets_the_successor_to_the_windows_last_millisecond(
        api, user, login, redis_conn, frozen):
    first = login(user)["refresh_token"]
    key = str(uuid.uuid4())
    successor = rotate(api, first, key).json()["refresh_token"]
    rotated = session_record(redis_conn, first)
    assert rotated["ik"] == f"{claims_of(first)['jti']}:{key_hash(key)}"
    frozen.at(RETRY_WINDOW)
    retry = rotate(api, first, key)
    assert retry.status_code == 200 and retry.json()["refresh_token"] == successor
    retried = session_record(redis_conn, first)
    assert ({k: retried[k] for k in ("cur", "prev", "rot", "ik")}
            == {k: rotated[k] for k in ("cur", "prev", "rot", "ik")})
    assert int(retried["last"]) == frozen.start_ms + RETRY_WINDOW
    frozen.at(RETRY_WINDOW + 1)
    assert_error(rotate(api, first, key), 401, "token_reused")
    assert_ended_by_reuse(redis_conn, user, first)


def test_a_key_a_replay_recorded_on_the_leeways_edge_opens_one_retry_to_the_windows_end(
        api, user, login, redis_conn, frozen):
    once, late = (login(user)["refresh_token"] for _ in range(2))
    successors = {token: rotate(api, token, str(uuid.uuid4())).json()["refresh_token"]
                  for token in (once, late)}
    tab = str(uuid.uuid4())
    frozen.at(LEEWAY)  # a racing tab, its reply lost, on the leeway's last millisecond
    for token in (once, late):
        assert rotate(api, token, tab).json()["refresh_token"] == successors[token]
        recorded = f"{claims_of(token)['jti']}:{key_hash(tab)}"
        assert session_record(redis_conn, token)["rk"] == recorded
    frozen.at(RETRY_WINDOW)
    assert rotate(api, once, tab).json()["refresh_token"] == successors[once]
    assert session_record(redis_conn, once)["rk"] == ""  # once: the entry went
    assert_error(rotate(api, once, tab), 401, "token_reused")
    assert_ended_by_reuse(redis_conn, user, once)
    frozen.at(RETRY_WINDOW + 1)
    assert_error(rotate(api, late, tab), 401, "token_reused")
    assert_ended_by_reuse(redis_conn, user, late)


# --- Login limits: a failure counts for its window, to the millisecond ---

def attempt(client, username, password="wrong", ip="192.0.2.1"):
    return client.post(OBTAIN, {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=ip)


def fill(scope: str) -> APIClient:
    """Failures at this instant that fill one budget (`scope`'s) and no other; returns the
    client whose right password that budget then refuses."""
    client = APIClient()
    if scope == "username":  # 5/m, from five addresses
        statuses = [attempt(client, "alice", ip=f"198.51.100.{i}").status_code for i in range(5)]
    elif scope == "ip":  # 20/m, at twenty usernames
        statuses = [attempt(client, f"guess{i}").status_code for i in range(20)]
    else:  # a device's own 5/m, once it has logged in
        assert attempt(client, "alice", password=PASSWORD).status_code == 200
        statuses = [attempt(client, "alice").status_code for _ in range(5)]
    assert set(statuses) == {401}
    return client


@pytest.mark.parametrize("scope", ["username", "ip", "device"])
def test_a_failure_counts_to_its_windows_last_millisecond(user, redis_conn, frozen, scope):
    client = fill(scope)
    (budget,) = redis_keys(redis_conn, f"*:throttle:{scope}:*")
    counted = redis_conn.zrange(budget, 0, -1, withscores=True)
    assert {score for _, score in counted} == {frozen.start_ms}
    frozen.at(LOGIN_WINDOW // 2)
    refused = attempt(client, "alice", password=PASSWORD)
    assert_error(refused, 429, "throttled")
    assert refused["Retry-After"] == "30"
    frozen.at(LOGIN_WINDOW - 1)
    refused = attempt(client, "alice", password=PASSWORD)
    assert_error(refused, 429, "throttled")
    assert refused["Retry-After"] == "1"
    assert redis_conn.zrange(budget, 0, -1, withscores=True) == counted  # refusals count nothing
    frozen.at(LOGIN_WINDOW)
    assert attempt(client, "alice", password=PASSWORD).status_code == 200
    assert redis_conn.zcard(budget) == 0  # the failures left, the right password's hold too


def test_over_its_limit_a_budget_has_room_when_enough_failures_have_left(user, frozen):
    # More failures counted than the limit allows (the limit lowered since; the address's
    # budget overshot by guesses in flight): room comes when the third newest leaves.
    for second in range(5):
        frozen.at(second * SECOND)
        assert attempt(APIClient(), "alice", ip=f"198.51.100.{second}").status_code == 401
    with override_settings(TOKENS={"LOGIN_FAILURES_PER_USERNAME": "3/m"}):
        frozen.at(10 * SECOND)
        refused = attempt(APIClient(), "alice", password=PASSWORD)
        assert_error(refused, 429, "throttled")
        assert refused["Retry-After"] == "52"  # the failure of second 2, a minute on
        frozen.at(2 * SECOND + LOGIN_WINDOW - 1)
        assert_error(attempt(APIClient(), "alice", password=PASSWORD), 429, "throttled")
        frozen.at(2 * SECOND + LOGIN_WINDOW)
        assert attempt(APIClient(), "alice", password=PASSWORD).status_code == 200


# --- Lifetimes: the session's idle and absolute ends, the access token's ---

def test_a_session_lives_to_the_last_millisecond_of_its_idle_lifetime(api, user, login,
                                                                     redis_conn, frozen):
    kept, lapsed = login(user), login(user)
    stored = session_record(redis_conn, kept["refresh_token"])
    assert (int(stored["exp"]), int(stored["abs"])) == (frozen.s(IDLE), frozen.s(ABSOLUTE))
    assert claims_of(kept["refresh_token"])["exp"] == frozen.s(IDLE)
    assert kept["refresh_expires_in"] == IDLE // 1000
    assert_ttl(redis_conn, kept["refresh_token"], IDLE)
    frozen.at(IDLE - 1)
    assert rotate(api, kept["refresh_token"]).status_code == 200
    frozen.at(IDLE)
    assert_error(rotate(api, lapsed["refresh_token"]), 401, "token_expired")


def test_each_rotation_moves_the_idle_end_but_never_past_the_absolute_end(api, user, login,
                                                                         redis_conn, frozen):
    pair = login(user)
    for day in (29, 58, 87):
        frozen.at(day * DAY)
        pair = rotate(api, pair["refresh_token"]).json()
        end = min(day * DAY + IDLE, ABSOLUTE)
        assert claims_of(pair["refresh_token"])["exp"] == frozen.s(end)
        assert int(session_record(redis_conn, pair["refresh_token"])["exp"]) == frozen.s(end)
        assert pair["refresh_expires_in"] == (end - day * DAY) // 1000
        assert_ttl(redis_conn, pair["refresh_token"], end - day * DAY)
    frozen.at(ABSOLUTE - 1)
    last = rotate(api, pair["refresh_token"])
    assert last.status_code == 200
    # Both tokens end with the session, the access token before its 5 minutes are up.
    assert claims_of(last.json()["refresh_token"])["exp"] == frozen.s(ABSOLUTE)
    assert claims_of(last.json()["access_token"])["exp"] == frozen.s(ABSOLUTE)
    frozen.at(ABSOLUTE)
    assert_error(rotate(api, last.json()["refresh_token"]), 401, "token_expired")


def test_a_rotation_redis_runs_at_the_absolute_end_ends_the_session(user, login, redis_conn,
                                                                   frozen):
    # Sent just before the end and run after it (a stall): the script's own clock decides.
    inside, at_end = login(user)["refresh_token"], login(user)["refresh_token"]
    end_ms = int(session_record(redis_conn, inside)["abs"]) * 1000

    def run(token: str, now_ms: int) -> store.Rotation:
        claims = claims_of(token)
        return store.rotate(user_id=claims["sub"], session_id=claims["sid"],
                            jti=claims["jti"], generation=claims["gen"],
                            fingerprint=users.password_fingerprint(user), new_jti="next",
                            now_ms=now_ms, idle_seconds=IDLE // 1000, leeway_ms=LEEWAY,
                            ip_address="").result

    rotation = run(inside, end_ms - 1)
    assert (rotation.outcome, rotation.expires_at) == ("rotated", end_ms // 1000)
    assert run(at_end, end_ms).outcome == "gone"
    assert session_record(redis_conn, at_end) == {} and reuse_marks(redis_conn, at_end) == []
    assert claims_of(at_end)["sid"].encode() not in index_members(redis_conn, user.pk)


def test_an_access_token_lives_to_the_last_millisecond_of_its_five_minutes(api, user, login,
                                                                          frozen):
    pair = login(user)
    assert claims_of(pair["access_token"])["exp"] == frozen.s(ACCESS)
    assert pair["expires_in"] == ACCESS // 1000
    frozen.at(ACCESS - 1)
    assert me(api, pair["access_token"]).status_code == 200
    frozen.at(ACCESS)
    assert_error(me(api, pair["access_token"]), 401, "token_expired")


# --- A device cookie's age, a reset link's timeout (whole seconds, as Django signs them) ---

def test_a_device_cookie_vouches_to_the_last_moment_of_its_year(user, frozen):
    device = APIClient()
    assert attempt(device, "alice", password=PASSWORD).status_code == 200
    cookie = device.cookies[DEVICE_COOKIE].value
    frozen.at(DEVICE_COOKIE_AGE - 10 * SECOND)
    fill("username")  # a lockout from elsewhere, still on at the year's end

    def with_cookie() -> APIClient:
        client = APIClient()
        client.cookies[DEVICE_COOKIE] = cookie
        return client

    frozen.at(DEVICE_COOKIE_AGE, exact=True)
    assert attempt(with_cookie(), "alice", password=PASSWORD).status_code == 200
    frozen.at(DEVICE_COOKIE_AGE + 1)  # and half a millisecond
    assert_error(attempt(with_cookie(), "alice", password=PASSWORD), 429, "throttled")


RESET, CONFIRM = "/api/auth/password/reset/", "/api/auth/password/reset/confirm/"
LINK = re.compile(r"reset#(?P<uid>[A-Za-z0-9_-]+)/(?P<token>[A-Za-z0-9-]+)")


@pytest.mark.django_db(transaction=True)  # the email goes from the background thread
def test_a_reset_link_works_to_the_last_second_of_its_three_days(make_user, frozen, mailoutbox):
    for name in ("alice", "dave"):
        make_user(username=name, email=f"{name}@example.com")
        assert APIClient().post(RESET, {"email": f"{name}@example.com"},
                                format="json").status_code == 202
    assert background.wait_idle(10)
    links = {message.to[0]: LINK.search(message.body).groupdict() for message in mailoutbox}

    def confirm(email: str):
        return APIClient().post(CONFIRM, {**links[email], "new_password": "a new passphrase 42"},
                                format="json")

    frozen.at(RESET_TIMEOUT, exact=True)
    assert confirm("alice@example.com").status_code == 204
    frozen.at(RESET_TIMEOUT + SECOND)
    assert_error(confirm("dave@example.com"), 400, "invalid_reset_link")
