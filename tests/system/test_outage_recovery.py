"""An outage must never become a logout, on real gunicorn and redis-server processes: a refresh
whose reply was lost in a Redis stall longer than the leeway is retried, not punished, and
rotations the store lost (the tail of an AOF) are adopted. A thief's replay is still reuse."""

import shutil
import signal
import time
import uuid

import pytest
import redis

from tests.helpers import (NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, claims_of,
                           session_record)
from tests.system.conftest import call, session_count, start_project, wait_for
from tokens.store.scripts import CREATE

pytestmark = pytest.mark.timeout(300)

STALL_SECONDS = 12  # longer than the servers' ROTATION_LEEWAY (10 s)


@pytest.fixture
def everysec_project():
    project = start_project("--appendonly", "yes", "--appendfsync", "everysec")
    yield project
    project.stop()


def in_the_aof(project, tokens: list[str]) -> bool:
    """Whether the AOF's files hold the rotation that issued each token (the jti its session
    records as current), as a copy of them or a restarted Redis would read them."""
    written = b"".join(path.read_bytes()
                       for path in (project.redis.directory / "appendonlydir").iterdir())
    return all(claims_of(token)["jti"].encode() in written for token in tokens)


def ran(conn: redis.Redis, script) -> bool:
    """Whether Redis ran `script` since its slow log was set to log every command."""
    return any(entry["command"].split()[:2] == [b"EVALSHA", script.sha.encode()]
               for entry in conn.slowlog_get(1000))


def test_a_refresh_lost_in_a_long_stall_is_retried_and_a_replay_is_still_reuse(project):
    # One worker, whose pooled Redis connection is open: the refresh sent during the stall
    # reaches Redis's socket buffer, as it does in production whenever a connection is live.
    api = project.start_api(workers=1)
    conn = redis.Redis(port=project.redis.port)
    # One rotation first, so the rotation script is loaded in Redis.
    client = api.refresh(api.login()["refresh_token"]).body["refresh_token"]
    # Another session rotates just before the stall, with a key; its spent token is stolen.
    stolen = api.refresh(api.login()["refresh_token"]).body["refresh_token"]
    thief_key = str(uuid.uuid4())
    assert api.call("POST", REFRESH, {"refresh_token": stolen},
                    headers={"Idempotency-Key": str(uuid.uuid4())}).status == 200
    key = str(uuid.uuid4())
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        lost = api.call("POST", REFRESH, {"refresh_token": client},
                        headers={"Idempotency-Key": key})
        assert (lost.status, lost.code) == (503, "token_store_unavailable")
        time.sleep(max(0.0, STALL_SECONDS - (time.monotonic() - started)))
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    # Redis runs the buffered script of the request that gave up: the session moved on to a
    # successor that no client received.
    wait_for(lambda: session_record(conn, client).get("prev") == claims_of(client)["jti"])
    retry = api.call("POST", REFRESH, {"refresh_token": client}, headers={"Idempotency-Key": key})
    assert retry.status == 200, retry
    successor = retry.body["refresh_token"]
    # The one the store recorded.
    assert session_record(conn, client)["cur"] == claims_of(successor)["jti"]
    assert api.refresh(successor).status == 200  # and the session goes on
    # A thief's replay of a spent token after the leeway, without its key or with another,
    # is still reuse and ends that session.
    replay = api.call("POST", REFRESH, {"refresh_token": stolen},
                      headers={"Idempotency-Key": thief_key})
    assert (replay.status, replay.code) == (401, "token_reused")
    assert session_record(conn, stolen) == {}


def test_a_refresh_lost_in_a_long_stall_is_retried_without_a_key_too(project):
    # As test_a_refresh_lost_in_a_long_stall_..., by a client that sends no Idempotency-Key:
    # the rotation that waited in the stall is dated when Redis ran it, so a retry right
    # after recovery is inside the leeway, however long the stall was.
    api = project.start_api(workers=1)
    conn = redis.Redis(port=project.redis.port)
    client = api.refresh(api.login()["refresh_token"]).body["refresh_token"]
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        lost = api.refresh(client)
        assert (lost.status, lost.code) == (503, "token_store_unavailable")
        time.sleep(max(0.0, STALL_SECONDS - (time.monotonic() - started)))
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    wait_for(lambda: session_record(conn, client).get("prev") == claims_of(client)["jti"])
    retry = api.refresh(client)
    assert retry.status == 200, retry
    assert claims_of(retry.body["refresh_token"])["jti"] == session_record(conn, client)["cur"]
    assert api.refresh(retry.body["refresh_token"]).status == 200
    assert conn.keys("*:x:*") == []  # no reuse was declared


def test_a_login_that_answered_503_in_a_stall_leaves_no_session_behind(project):
    # Without login limits, a login's first Redis call is its session's write: sent into the
    # stalled Redis, it waits in the socket buffer and runs when Redis resumes, after the
    # client was told 503. Nobody holds its tokens, so it must not stay listed for weeks.
    api = project.start_api(workers=1, TOKENS_LOGIN_LIMITS="off")
    conn = redis.Redis(port=project.redis.port)
    pair = api.login()  # the worker's pooled connection is open; the script is loaded
    conn.config_set("slowlog-log-slower-than", 0)  # every command from here on is logged
    conn.slowlog_reset()
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        lost = api.call("POST", OBTAIN, {"username": "alice", "password": PASSWORD})
        assert (lost.status, lost.code) == (503, "token_store_unavailable")
        time.sleep(2)
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    # The lost login's write runs, late; the worker marks its session abandoned once Redis
    # answers again. In whichever order they ran, the write wrote nothing or was removed.
    wait_for(lambda: ran(conn, CREATE), seconds=30)
    wait_for(lambda: conn.keys("*:a:*"), seconds=30)
    assert session_count(conn, pair["refresh_token"]) == 1
    assert len(conn.keys("*tokens:{*}:s:*")) == 1
    assert api.refresh(pair["refresh_token"]).status == 200


def test_rotations_lost_with_the_tail_of_the_aof_are_adopted(everysec_project):
    project = everysec_project
    api = project.start_api()
    tokens = [api.refresh(api.login()["refresh_token"]).body["refresh_token"] for _ in range(8)]
    wait_for(lambda: in_the_aof(project, tokens))  # everysec: the logins and first rotations
    aof = project.redis.directory / "appendonlydir"
    snapshot = project.redis.directory / "aof-before-burst"
    shutil.copytree(aof, snapshot)
    tokens = [api.refresh(t).body["refresh_token"] for t in tokens]  # the burst
    project.redis.kill()
    # Restart from the AOF as it was before the burst: every rotation of the burst is lost
    # (as on a replica promoted before it received them).
    shutil.rmtree(aof)
    shutil.copytree(snapshot, aof)
    project.redis.restart()
    replies = [api.refresh(t) for t in tokens]
    assert [r.status for r in replies] == [200] * len(tokens)
    assert all(api.refresh(r.body["refresh_token"]).status == 200 for r in replies)


def test_a_sigkill_right_after_a_burst_logs_no_one_out(everysec_project):
    project = everysec_project
    api = project.start_api()
    tokens = [api.refresh(api.login()["refresh_token"]).body["refresh_token"] for _ in range(8)]
    wait_for(lambda: in_the_aof(project, tokens))
    tokens = [api.refresh(t).body["refresh_token"] for t in tokens]
    project.redis.kill()
    project.redis.restart()
    assert [api.refresh(t).status for t in tokens] == [200] * len(tokens)


def test_a_password_change_whose_reply_was_lost_is_retried_not_a_logout():
    # The client gives up before the reply comes (its connection dropped); the server goes on
    # and changes the password. Django's own PBKDF2 (~0.4 s a hash here) makes the change
    # slower than the client's patience. A retry with the same key answers as the change did.
    project = start_project("--appendonly", "yes", "--appendfsync", "always",
                            TOKENS_TEST_HASHER="django")
    try:
        api = project.start_api()
        pair, other = api.login(), api.login()
        body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        with pytest.raises(TimeoutError):
            call(api.base, "POST", PASSWORD_URL, body, token=pair["access_token"], timeout=0.2,
                 headers=key)
        # The server finishes the change: the other session ends.
        wait_for(lambda: api.refresh(other["refresh_token"]).code == "session_revoked")
        retry = api.call("POST", PASSWORD_URL, body, token=pair["access_token"], headers=key)
        assert retry.status == 200, retry
        assert api.refresh(retry.body["refresh_token"]).status == 200
        # Without the key the old token is refused, as after any password change.
        plain = api.call("POST", PASSWORD_URL, body, token=pair["access_token"])
        assert (plain.status, plain.code) == (401, "session_revoked")
    finally:
        project.stop()
