"""Real gunicorn servers and redis-server processes on loopback, driven over HTTP."""

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import PASSWORD

pytestmark = pytest.mark.timeout(300)

REFRESH = "/api/auth/token/refresh/"
OBTAIN = "/api/auth/token/"


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
    assert a.refresh(rotated.body["refresh_token"]).code == "session_revoked"
    # Logout on B ends a session obtained on A, for access tokens too.
    other = a.login()
    assert b.call("POST", "/api/auth/logout/", {"refresh_token": other["refresh_token"]}).status == 204
    assert a.call("GET", "/api/auth/me/", token=other["access_token"]).code == "session_revoked"
    assert a.refresh(other["refresh_token"]).code == "session_revoked"


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
    assert api.call("GET", "/api/auth/me/", token=reply.body["access_token"]).status == 200


def test_redis_down_answers_503_then_service_resumes(project):
    api = project.start_api()
    pair = api.login()
    project.redis.kill()
    outage = [
        api.call("POST", "/api/auth/token/", {"username": "alice", "password": "x" * 10}),
        api.refresh(pair["refresh_token"]),
        api.call("POST", "/api/auth/logout/", {"refresh_token": pair["refresh_token"]}),
        api.call("GET", "/api/auth/me/", token=pair["access_token"]),
    ]
    # Each answered within the client's timeout (no hung worker), with 503 and the code.
    assert [(r.status, r.code) for r in outage] == [(503, "token_store_unavailable")] * 4
    project.redis.restart()
    assert api.refresh(pair["refresh_token"]).status == 200  # nothing was lost


def test_redis_that_accepts_but_never_answers_yields_503(project):
    api = project.start_api()
    pair = api.login()
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        replies = [api.refresh(pair["refresh_token"]),
                   api.call("GET", "/api/auth/me/", token=pair["access_token"])]
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    assert [(r.status, r.code) for r in replies] == [(503, "token_store_unavailable")] * 2
    assert api.refresh(pair["refresh_token"]).status == 200


def race(servers, token: str, requests: int = 16) -> list:
    with ThreadPoolExecutor(max_workers=requests) as pool:
        futures = [pool.submit(servers[i % len(servers)].refresh, token) for i in range(requests)]
        return [f.result(timeout=60) for f in futures]


def test_racing_refreshes_across_processes_never_fork_a_session(project):
    servers = [project.start_api(), project.start_api()]
    for _ in range(3):
        token = servers[0].login()["refresh_token"]
        replies = race(servers, token)
        assert all(r.status < 500 for r in replies)
        successors = {r.body["refresh_token"] for r in replies if r.status == 200}
        assert len(successors) == 1
        # With the default leeway, every racing tab is kept logged in.
        assert [r.status for r in replies] == [200] * len(replies)


def test_racing_with_zero_leeway_has_one_winner_and_ends_the_session(project):
    servers = [project.start_api(TOKENS_LEEWAY="0"), project.start_api(TOKENS_LEEWAY="0")]
    token = servers[0].login()["refresh_token"]
    replies = race(servers, token)
    assert all(r.status < 500 for r in replies)
    winners = [r for r in replies if r.status == 200]
    assert len(winners) == 1
    assert {r.code for r in replies if r.status != 200} <= {"token_reused", "session_revoked"}
    assert servers[1].refresh(winners[0].body["refresh_token"]).code == "session_revoked"


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
