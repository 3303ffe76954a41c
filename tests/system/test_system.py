"""Real gunicorn servers and redis-server processes on loopback, driven over HTTP."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.helpers import (
    LOGOUT, ME, NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, SESSIONS, claims_of,
    session_record,
)
from tests.system.conftest import (call, every_store_endpoint, session_count, store_requests,
                                   wait_for)

pytestmark = pytest.mark.timeout(300)

LEEWAY = 10  # seconds: ROTATION_LEEWAY, unless a test starts its servers with another
UNAVAILABLE = (503, "token_store_unavailable")


def test_two_api_processes_share_one_store(project):
    a = project.start_api(TOKENS_LEEWAY="0")
    b = project.start_api(TOKENS_LEEWAY="0")
    pair = a.login()
    # Obtained on A, refreshed on B.
    on_b = b.refresh(pair["refresh_token"])
    assert on_b.status == 200
    # Rotated on A, replayed on B: reuse, and the whole session ends.
    rotated = a.refresh(on_b.body["refresh_token"])
    assert rotated.status == 200
    replay = b.refresh(on_b.body["refresh_token"])
    assert (replay.status, replay.code) == (401, "token_reused")
    assert a.refresh(rotated.body["refresh_token"]).code == "token_reused"
    # Logout on B ends a session obtained on A, for access tokens too.
    other = a.login()
    assert b.call("POST", LOGOUT, {"refresh_token": other["refresh_token"]}).status == 204
    assert a.call("GET", ME, token=other["access_token"]).code == "session_revoked"
    assert a.refresh(other["refresh_token"]).code == "session_revoked"


def test_replays_across_processes_inside_and_after_the_leeway(project):
    # The leeway is the one of the process that sees the replay: A's is the default (10 s),
    # B's 1 s, so that "after the leeway" costs a second of sleep, not ten.
    a, b = project.start_api(), project.start_api(TOKENS_LEEWAY="1")
    conn = redis.Redis(port=project.redis.port)
    first = a.login()["refresh_token"]
    rotated = b.refresh(first).body["refresh_token"]
    # Replayed on another process inside the leeway: the very same successor, byte for byte.
    replay = a.refresh(first)
    assert replay.status == 200 and replay.body["refresh_token"] == rotated
    # A grandparent is reuse, even inside the leeway: the session ends, in the store too.
    newest = b.refresh(rotated).body["refresh_token"]
    grandparent = a.refresh(first)
    assert (grandparent.status, grandparent.code) == (401, "token_reused")
    assert session_record(conn, first) == {}
    assert b.refresh(newest).code == "token_reused"
    # Rotated on A, replayed on B after B's leeway: reuse, and the session ends.
    spent = b.login()["refresh_token"]
    successor = a.refresh(spent).body["refresh_token"]
    time.sleep(1.2)
    late = b.refresh(spent)
    assert (late.status, late.code) == (401, "token_reused")
    assert session_record(conn, spent) == {}
    assert a.refresh(successor).code == "token_reused"


def test_sessions_survive_a_restart_of_every_api_process(project):
    first = project.start_api()
    pair = first.login()
    first.stop()
    second = project.start_api()
    assert second.refresh(pair["refresh_token"]).status == 200


def test_sessions_survive_a_redis_crash_with_aof(project):
    api = project.start_api()
    pair = api.login()
    project.redis.restart()  # SIGKILL, then start again on the same AOF
    reply = api.refresh(pair["refresh_token"])
    assert reply.status == 200
    assert api.call("GET", ME, token=reply.body["access_token"]).status == 200


def test_redis_down_answers_503_then_service_resumes(project):
    api = project.start_api()
    pair = api.login()
    project.redis.kill()
    outage = every_store_endpoint(api, pair)
    # Each answered within the client's timeout (no hung worker), with 503 and the code.
    assert outage == dict.fromkeys(outage, UNAVAILABLE)
    project.redis.restart()
    assert api.refresh(pair["refresh_token"]).status == 200  # nothing was lost


def test_redis_that_refuses_commands_answers_503_then_service_resumes(project):
    api = project.start_api()
    pair = api.login()
    conn = redis.Redis(port=project.redis.port)
    # Full (maxmemory reached, noeviction): what needs memory is refused with an OOM error.
    conn.config_set("maxmemory-policy", "noeviction")
    conn.config_set("maxmemory", 1)
    try:
        full = [
            api.call("POST", OBTAIN, {"username": "alice", "password": PASSWORD}),
            api.refresh(pair["refresh_token"]),
            api.call("POST", PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                     token=pair["access_token"]),
        ]
    finally:
        conn.config_set("maxmemory", 0)
    assert [(r.status, r.code) for r in full] == [UNAVAILABLE] * 3
    # Requiring a password the API does not know: every command is refused (NOAUTH).
    conn.config_set("requirepass", "set-by-the-test-only")
    try:
        conn.client_kill_filter(_type="normal", skipme=True)  # the API's pooled connections
        refused = every_store_endpoint(api, pair)
    finally:
        conn.config_set("requirepass", "")
    assert refused == dict.fromkeys(refused, UNAVAILABLE)
    # Nothing was lost or changed: the pre-outage tokens go on.
    assert api.call("GET", ME, token=pair["access_token"]).status == 200
    assert api.refresh(pair["refresh_token"]).status == 200


def test_redis_that_accepts_but_never_answers_yields_503(project):
    # One worker, whose pooled Redis connection is open: the refresh sent during the stall
    # reaches Redis's socket buffer, as it does in production whenever a connection is live.
    api = project.start_api(workers=1, TOKENS_LEEWAY=str(LEEWAY))
    conn = redis.Redis(port=project.redis.port)
    # One rotation first, so the rotation script is loaded in Redis.
    pair = api.refresh(api.login()["refresh_token"]).body
    token = pair["refresh_token"]
    project.redis.process.send_signal(signal.SIGSTOP)
    stalled = time.monotonic()
    try:
        replies = [api.refresh(token), api.call("GET", ME, token=pair["access_token"])]
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    assert [(r.status, r.code) for r in replies] == [UNAVAILABLE] * 2
    # Redis runs the buffered script of the refresh that gave up: the session moved on to a
    # successor that no client received.
    wait_for(lambda: session_record(conn, token).get("prev") == claims_of(token)["jti"])
    lost = session_record(conn, token)["cur"]
    # The stall (two requests' socket timeouts, a few seconds) is well inside the leeway, so
    # the pre-outage token, presented again without an Idempotency-Key, is a replay inside
    # it. A stall longer than the leeway is test_outage_recovery.py's, with a key.
    assert time.monotonic() - stalled < LEEWAY, "the stall outlasted the leeway"
    closing = api.refresh(token)
    assert closing.status == 200, closing
    # The successor the store recorded, not a rotation of its own: the session goes on.
    assert claims_of(closing.body["refresh_token"])["jti"] == lost
    assert session_record(conn, token)["cur"] == lost
    assert api.refresh(closing.body["refresh_token"]).status == 200
    assert session_count(conn, token) == 1


def test_redis_that_hangs_answers_503_on_every_endpoint_then_service_resumes(project):
    api = project.start_api(workers=4)
    pair = api.login()
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        # In parallel: each request waits out its Redis timeouts (about a second each).
        outage = every_store_endpoint(api, pair, parallel=True)
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    assert outage == dict.fromkeys(outage, UNAVAILABLE)
    # Once Redis resumes, so does the service.
    fresh = api.login()
    assert api.call("GET", ME, token=fresh["access_token"]).status == 200
    assert api.refresh(fresh["refresh_token"]).status == 200


# "A hung Redis fails a request in about a second (a login in two)": a bound on the contract
# (the store's socket timeouts, one retry), with room for a loaded machine, not a speed test.
HUNG_CEILING = 3  # seconds


def test_a_hung_redis_fails_each_request_within_seconds(project):
    api = project.start_api(workers=1)
    pair = api.login()
    answers = {}
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        for name, request in store_requests(pair).items():
            started = time.monotonic()
            # The client waits far longer than the bound: the server must give up by itself.
            reply = call(api.base, *request, timeout=60)
            answers[name] = (reply.status, reply.code, time.monotonic() - started)
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    assert {name: answer[:2] for name, answer in answers.items()} == dict.fromkeys(
        answers, UNAVAILABLE)
    late = {name: round(answer[2], 2) for name, answer in answers.items()
            if answer[2] > HUNG_CEILING}
    assert late == {}, f"503s later than {HUNG_CEILING} s"
    assert api.call("GET", ME, token=api.login()["access_token"]).status == 200


def race(servers, token: str, requests: int = 16) -> list:
    with ThreadPoolExecutor(max_workers=requests) as pool:
        futures = [pool.submit(servers[i % len(servers)].refresh, token) for i in range(requests)]
        return [f.result(timeout=60) for f in futures]


def test_racing_refreshes_across_processes_never_fork_a_session(project):
    servers = [project.start_api(), project.start_api()]
    conn = redis.Redis(port=project.redis.port)
    for logins in range(1, 4):
        token = servers[0].login()["refresh_token"]
        replies = race(servers, token)
        assert all(r.status < 500 for r in replies)
        successors = {r.body["refresh_token"] for r in replies if r.status == 200}
        assert len(successors) == 1
        # With the default leeway, every racing tab is kept logged in.
        assert [r.status for r in replies] == [200] * len(replies)
        # The one successor goes on, and no session was ended or forked by the race.
        after = servers[1].refresh(successors.pop())
        assert after.status == 200
        assert session_count(conn, token) == logins
        listed = servers[0].call("GET", SESSIONS, token=after.body["access_token"]).body
        assert len(listed) == logins


def test_racing_with_zero_leeway_has_one_winner_and_ends_the_session(project):
    servers = [project.start_api(TOKENS_LEEWAY="0"), project.start_api(TOKENS_LEEWAY="0")]
    conn = redis.Redis(port=project.redis.port)
    token = servers[0].login()["refresh_token"]
    replies = race(servers, token)
    assert all(r.status < 500 for r in replies)
    winners = [r for r in replies if r.status == 200]
    assert len(winners) == 1
    assert {r.code for r in replies if r.status != 200} <= {"token_reused", "session_revoked"}
    assert servers[1].refresh(winners[0].body["refresh_token"]).code == "token_reused"
    # Ended by the reuse, not forked: the user has no session left.
    assert session_count(conn, token) == 0


def test_login_limits_hold_across_processes_against_parallel_spellings(project):
    a, b = project.start_api(), project.start_api()
    login = {"username": "alice", "password": PASSWORD}
    known = a.call("POST", OBTAIN, login)  # a browser alice has logged in from before
    device = {"Cookie": known.headers["Set-Cookie"].split(";")[0]}
    spellings = ["alice", " alice", "ALICE", "alice\u2003", "\uff41lice"] * 2
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(
            lambda i: (a, b)[i % 2].call("POST", OBTAIN, {"username": spellings[i],
                                                          "password": f"nope{i}"}),
            range(10)))
    assert sorted(r.status for r in replies) == [401] * 5 + [429] * 5
    throttled = b.call("POST", OBTAIN, login)
    assert (throttled.status, throttled.code) == (429, "throttled")
    assert int(throttled.headers["Retry-After"]) > 0
    # The attacker's failures do not lock alice out of the browser she used before.
    assert b.call("POST", OBTAIN, login, headers=device).status == 200


def test_the_address_limit_holds_across_processes(project):
    a, b = project.start_api(), project.start_api()
    login = {"username": "alice", "password": PASSWORD}
    known = a.call("POST", OBTAIN, login)  # a browser alice has logged in from before
    device = {"Cookie": known.headers["Set-Cookie"].split(";")[0]}
    # 20 wrong passwords (the per-address limit) for as many usernames, spread over both
    # processes. One at a time: the address counts a failure once its check has run, so
    # parallel guesses could overshoot the limit by the number in flight.
    failures = [(a, b)[i % 2].call("POST", OBTAIN, {"username": f"someone{i}",
                                                    "password": "a wrong password"})
                for i in range(20)]
    assert [r.status for r in failures] == [401] * 20
    # Then even alice's right password, from a client without her device cookie, waits.
    for server in (a, b):
        throttled = server.call("POST", OBTAIN, login)
        assert (throttled.status, throttled.code) == (429, "throttled")
    # Her own browser is not locked out by what came from elsewhere.
    assert b.call("POST", OBTAIN, login, headers=device).status == 200


def test_concurrent_logins_on_the_embedded_database_never_fail(project):
    # Every login writes `last_login`: four workers writing one SQLite file at once wait for
    # each other (busy timeout, WAL) instead of failing with "database is locked" (a 500).
    server = project.start_api(workers=4)

    def logins(_) -> list[int]:
        return [server.call("POST", OBTAIN, {"username": "alice", "password": PASSWORD}).status
                for _ in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(logins, range(8)) for status in batch]
    assert statuses == [200] * 200
    assert "database is locked" not in server.log.read_text()
