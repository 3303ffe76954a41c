"""TOKENS["REPLICA_ACKS"]: a write is answered only once a replica holds it. A replica that
falls behind turns writes into 503s, and the client's retry of the same request, once the
replica is back, gets the same session going: nothing lost, no one logged out."""

import signal
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.helpers import (LOGOUT, LOGOUT_ALL, NEW_PASSWORD, OBTAIN, PASSWORD, REFRESH,
                           assert_error, caches_at, change_password, me, session_keys)
from tests.servers import RedisServer
from tests.system.conftest import wait_for
from tests.tokens.test_metrics import Samples

pytestmark = pytest.mark.django_db

# How long a write waits for a replica that lags (`paused`): shorter than the tests' socket
# timeout (0.5 s, tokens.E013), so that each such test waits no longer than it must.
ACKS = {"REPLICA_ACKS": 1, "REPLICA_ACK_TIMEOUT": timedelta(milliseconds=300)}
# How long one waits for a replica in step, which acknowledges within moments but on a busy
# 2-core machine may be kept off the CPU for longer than ACKS' wait; the primary's socket
# timeout is longer still (tokens.E013).
IN_STEP = {"REPLICA_ACKS": 1, "REPLICA_ACK_TIMEOUT": timedelta(seconds=5)}
IN_STEP_SOCKET_TIMEOUT = 10


@pytest.fixture(scope="module")
def pair():
    """A primary and one replica of it, the replica in sync."""
    # The replica's first sync at once, not after Redis's default 5 s wait for others.
    primary = RedisServer.start("--repl-diskless-sync-delay", "0")
    replica = None
    try:
        replica = RedisServer.start("--replicaof", "127.0.0.1", str(primary.port))
        conn = redis.Redis(port=primary.port)
        wait_for(lambda: conn.info("replication").get("connected_slaves") == 1
                 and redis.Redis(port=replica.port).info("replication")[
                     "master_link_status"] == "up")
        # In step: a write is acknowledged (a replica that has just synced may not be yet).
        for _ in range(50):
            conn.set("in-step", 1)
            if conn.wait(1, 200) == 1:
                break
        else:
            raise RuntimeError("the replica acknowledges nothing")
        yield primary, replica
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()


@pytest.fixture
def primary_conn(pair):
    primary, replica = pair
    conn = redis.Redis(port=primary.port)
    conn.flushdb()
    caches = caches_at(primary.url)
    caches["default"]["OPTIONS"]["SOCKET_TIMEOUT"] = IN_STEP_SOCKET_TIMEOUT
    with override_settings(CACHES=caches, TOKENS=IN_STEP):
        yield conn
    replica.process.send_signal(signal.SIGCONT)  # should a test fail while it is paused


class paused:
    """The replica stopped (SIGSTOP): it stays connected but acknowledges nothing; a write
    waits ACKS' short while for it."""

    def __init__(self, replica: RedisServer):
        self.replica = replica
        self.short_wait = None

    def __enter__(self):
        self.short_wait = override_settings(TOKENS={**settings.TOKENS, **ACKS})
        self.short_wait.enable()
        self.replica.process.send_signal(signal.SIGSTOP)

    def __exit__(self, *exc):
        self.replica.process.send_signal(signal.SIGCONT)
        self.short_wait.disable()
        primary_port = int(self.replica.args[self.replica.args.index("--replicaof") + 2])
        conn = redis.Redis(port=primary_port)
        # Bounded: until the replica has caught up with everything the primary wrote.
        for _ in range(100):
            if conn.wait(1, 100) == 1:
                return
        raise RuntimeError("the replica did not catch up")


def keyed_refresh(api, token: str, key: str):
    return api.post(REFRESH, {"refresh_token": token}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key)


def test_with_a_replica_in_step_logins_and_refreshes_answer_as_usual(api, user, login, primary_conn,
                                                              pair):
    _, replica = pair
    pair_of_tokens = login(user)
    # The login's session is on the replica before the login was answered.
    assert session_keys(redis.Redis(port=replica.port))
    renewed = keyed_refresh(api, pair_of_tokens["refresh_token"], str(uuid.uuid4()))
    assert renewed.status_code == 200
    assert me(api, renewed.json()["access_token"]).status_code == 200


def test_a_rotation_a_replica_did_not_acknowledge_is_a_503_and_its_retry_goes_on(
        api, user, login, primary_conn, pair):
    _, replica = pair
    first = login(user)
    key = str(uuid.uuid4())
    with paused(replica):
        assert_error(keyed_refresh(api, first["refresh_token"], key), 503,
                     "token_store_unavailable")
        # Reading needs no replica: the access token still works meanwhile.
        assert me(api, first["access_token"]).status_code == 200
    retry = keyed_refresh(api, first["refresh_token"], key)
    assert retry.status_code == 200, retry.content
    assert me(api, retry.json()["access_token"]).status_code == 200
    assert keyed_refresh(api, retry.json()["refresh_token"], str(uuid.uuid4())).status_code == 200


def test_a_login_a_replica_did_not_acknowledge_leaves_no_session(api, user, primary_conn, pair):
    _, replica = pair
    with paused(replica):
        response = api.post(OBTAIN, {"username": user.username, "password": PASSWORD},
                            format="json")
        assert_error(response, 503, "token_store_unavailable")
    assert session_keys(primary_conn) == []  # no ghost login listed for weeks
    assert api.post(OBTAIN, {"username": user.username, "password": PASSWORD},
                    format="json").status_code == 200


def test_a_write_a_replica_did_not_acknowledge_counts_among_the_stores_failures(
        api, user, primary_conn, pair):
    _, replica = pair
    samples = Samples()
    with paused(replica):
        assert_error(api.post(OBTAIN, {"username": user.username, "password": PASSWORD},
                              format="json"), 503, "token_store_unavailable")
    assert samples.delta("tokens_store_errors_total", operation="create") == 1


def test_a_logout_a_replica_did_not_acknowledge_is_a_503_and_its_retry_ends_it(
        api, user, login, primary_conn, pair):
    _, replica = pair
    tokens = login(user)
    with paused(replica):
        assert_error(api.post(LOGOUT, {"refresh_token": tokens["refresh_token"]},
                              format="json"), 503, "token_store_unavailable")
    assert api.post(LOGOUT, {"refresh_token": tokens["refresh_token"]},
                    format="json").status_code == 204
    assert_error(me(api, tokens["access_token"]), 401, "session_revoked")
    assert session_keys(redis.Redis(port=replica.port)) == []


def test_a_password_change_a_replica_did_not_acknowledge_is_retried_to_the_same_end(
        api, user, login, primary_conn, pair):
    _, replica = pair
    tokens = login(user)
    other = login(user)
    key = str(uuid.uuid4())
    with paused(replica):
        assert_error(change_password(api, tokens["access_token"], key), 503,
                     "token_store_unavailable")
    retry = change_password(api, tokens["access_token"], key)
    assert retry.status_code == 200, retry.content
    assert me(api, retry.json()["access_token"]).status_code == 200
    assert_error(me(api, other["access_token"]), 401, "session_revoked")


def test_without_a_replica_every_write_is_a_503_never_a_logout(api, user, login, pair):
    # REPLICA_ACKS set on a Redis with no replica: refused loudly, and nothing is lost.
    primary, _ = pair
    lone = RedisServer.start()
    try:
        with override_settings(CACHES=caches_at(lone.url)):
            tokens = login(user)
            with override_settings(TOKENS=ACKS):
                assert_error(api.post(REFRESH, {"refresh_token": tokens["refresh_token"]},
                                      format="json"), 503, "token_store_unavailable")
            # Switched off again, the same token's retry (inside the leeway) goes on.
            assert api.post(REFRESH, {"refresh_token": tokens["refresh_token"]},
                            format="json").status_code == 200
    finally:
        lone.stop()


def test_an_ack_timeout_as_long_as_the_socket_timeout_is_refused_by_the_checks():
    with override_settings(TOKENS={"REPLICA_ACKS": 1,
                                   "REPLICA_ACK_TIMEOUT": timedelta(seconds=5)}):
        with pytest.raises(SystemCheckError, match="tokens.E013"):
            call_command("check")
    for acks in (-1, "1", 1.0, True):
        with override_settings(TOKENS={"REPLICA_ACKS": acks}):
            with pytest.raises(SystemCheckError, match="tokens.E012"):
                call_command("check")


def test_the_deploy_check_warns_when_there_are_fewer_replicas_than_acks(pair, primary_conn):
    from tokens.checks import check_token_redis

    assert [m.id for m in check_token_redis() if m.id == "tokens.W009"] == []
    with override_settings(TOKENS={**ACKS, "REPLICA_ACKS": 2}):
        assert "tokens.W009" in [m.id for m in check_token_redis()]


def test_a_keyless_retry_of_a_rotation_is_answered_while_the_replica_still_lags(
        api, user, login, primary_conn, pair):
    # Only a new rotation waits for the replica: the retry (no Idempotency-Key, inside the
    # leeway) hands out the successor already issued, so a replica that lags longer than the
    # leeway never turns a keyless client's retry into a reuse.
    _, replica = pair
    first = login(user)["refresh_token"]
    with paused(replica):
        assert_error(api.post(REFRESH, {"refresh_token": first}, format="json"), 503,
                     "token_store_unavailable")
        retry = api.post(REFRESH, {"refresh_token": first}, format="json")
        assert retry.status_code == 200, retry.content
    assert me(api, retry.json()["access_token"]).status_code == 200
    assert api.post(REFRESH, {"refresh_token": retry.json()["refresh_token"]},
                    format="json").status_code == 200


def test_a_reuse_while_the_replica_lags_is_reported_not_a_503(api, user, login, primary_conn,
                                                              pair):
    from tokens.models import SecurityEvent

    _, replica = pair
    first = login(user)["refresh_token"]
    successor = api.post(REFRESH, {"refresh_token": first}, format="json").json()
    with override_settings(TOKENS={**ACKS, "ROTATION_LEEWAY": timedelta(0)}), paused(replica):
        assert_error(api.post(REFRESH, {"refresh_token": first}, format="json"), 401,
                     "token_reused")
    assert [e.kind for e in SecurityEvent.objects.all()] == ["reuse"]
    assert_error(me(api, successor["access_token"]), 401, "session_revoked")


def test_a_password_change_the_replica_did_not_acknowledge_is_committed_not_half_made(
        api, user, login, primary_conn, pair):
    # The script stood on the primary (new generation, other sessions ended), so the
    # database keeps the new password too: never a session holding a password the
    # database does not, which would log the user out everywhere.
    _, replica = pair
    tokens = login(user)
    other = login(user)
    with paused(replica):
        assert_error(change_password(api, tokens["access_token"]), 503,
                     "token_store_unavailable")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_error(me(api, other["access_token"]), 401, "session_revoked")
    assert api.post(OBTAIN, {"username": user.username, "password": NEW_PASSWORD},
                    format="json").status_code == 200


def test_a_logout_everywhere_the_replica_did_not_acknowledge_is_recorded(
        api, user, login, primary_conn, pair):
    from tokens.models import SecurityEvent

    _, replica = pair
    tokens = login(user)
    login(user)
    with paused(replica):
        assert_error(api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"),
                     503, "token_store_unavailable")
    assert [(e.kind, e.sessions_ended) for e in SecurityEvent.objects.all()] == [
        ("logout_all", 2)]
    assert session_keys(primary_conn) == []


def test_an_admin_revocation_the_replica_did_not_acknowledge_says_it_stood(
        superuser_client, api, user, login, primary_conn, pair):
    from django.contrib.messages import get_messages

    from tokens.admin.sessions import REPLICAS_BEHIND

    _, replica = pair
    tokens = login(user)
    with paused(replica):
        response = superuser_client.post(f"/admin/accounts/user/{user.pk}/sessions/revoke-all/",
                                         {"post": "yes"})
    assert [str(m) for m in get_messages(response.wsgi_request)] == [REPLICAS_BEHIND]
    assert_error(me(api, tokens["access_token"]), 401, "session_revoked")
