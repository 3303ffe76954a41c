"""The token cache under Redis Sentinel (config.settings' sentinel_cache, as REDIS_SENTINELS
sets it): the store reads and writes on the primary only, and the deploy check counts the
primary's replicas. The failover itself: tests/system/test_failover.py."""

import signal
import socket
import threading
import uuid

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from config.settings import sentinel_cache
from tests.helpers import (
    OBTAIN, PASSWORD, SESSIONS, assert_error, caches_at, me, refresh, session_keys,
)
from tests.servers import RedisServer
from tests.system.conftest import wait_for
from tokens.checks import check_token_redis


@pytest.fixture
def servers():
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()


def sentinel_over(servers: list, primary: RedisServer) -> dict:
    """CACHES reaching `primary` through a Sentinel of its own (a service name of its own:
    django-redis keeps its pools per process, by LOCATION). It declares nothing down for a
    minute, so a stopped replica stays one it would read from."""
    service = f"tokens-{uuid.uuid4().hex[:8]}"
    sentinel = RedisServer.start_sentinel(service, primary.port, quorum=1, down_after_ms=60000)
    servers.append(sentinel)
    return {"default": sentinel_cache(settings.CACHES["default"], service=service,
                                      sentinels=[("127.0.0.1", sentinel.port)])}


def start_replica(servers: list, primary: RedisServer) -> RedisServer:
    replica = RedisServer.start("--replicaof", "127.0.0.1", str(primary.port))
    servers.append(replica)
    wait_for(lambda: redis.Redis(port=primary.port).info("replication")["connected_slaves"] == 1)
    return replica


def test_the_store_reads_and_writes_on_the_primary_only(servers, api, user, login):
    primary = RedisServer.start("--appendonly", "yes")
    servers.append(primary)
    replica = start_replica(servers, primary)
    caches = sentinel_over(servers, primary)
    service = caches["default"]["LOCATION"].split("/")[2]
    sentinel = redis.Redis(port=servers[-1].port)
    wait_for(lambda: sentinel.sentinel_master(service)["num-slaves"] == 1)
    # A replica that answers nothing: a read sent to it would time out (503).
    replica.process.send_signal(signal.SIGSTOP)
    with override_settings(CACHES=caches):
        pair = login(user)
        rotated = refresh(api, pair["refresh_token"])
        assert rotated.status_code == 200, rotated.content
        access = rotated.json()["access_token"]
        assert me(api, access).status_code == 200
        listed = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {access}")
        assert listed.status_code == 200 and len(listed.json()) == 1
    assert len(session_keys(redis.Redis(port=primary.port))) == 1


def ids(messages):
    return sorted(m.id for m in messages)


def test_the_deploy_check_counts_the_primarys_replicas(servers):
    primary = RedisServer.start("--appendonly", "yes", "--maxmemory-policy", "noeviction")
    servers.append(primary)
    with override_settings(CACHES=sentinel_over(servers, primary)):
        assert ids(check_token_redis()) == ["tokens.W008"]
        start_replica(servers, primary)
        (info,) = check_token_redis()
    assert info.id == "tokens.I001" and "1 connected replica" in info.msg


def test_a_write_on_a_demoted_primary_is_a_503_and_the_session_goes_on(servers, api, user, login):
    # What a client without Sentinel sees while an address still leads to the old primary,
    # now a replica: READONLY (a ResponseError) must be an outage, not a 500 or a logout.
    primary = RedisServer.start("--repl-diskless-sync-delay", "0")  # the replica syncs at once
    servers.append(primary)
    replica = start_replica(servers, primary)
    with override_settings(CACHES=caches_at(primary.url)):
        pair = login(user)
    written = redis.Redis(port=primary.port).info("replication")["master_repl_offset"]
    wait_for(lambda: redis.Redis(port=replica.port).info("replication")["slave_repl_offset"]
             >= written)
    with override_settings(CACHES=caches_at(replica.url)):
        assert_error(refresh(api, pair["refresh_token"]), 503, "token_store_unavailable")
    with override_settings(CACHES=caches_at(primary.url)):
        assert refresh(api, pair["refresh_token"]).status_code == 200


@pytest.fixture
def hanging_up():
    """A loopback port that accepts connections and closes them at once: a Sentinel (or a
    proxy in front of one) that answers nothing. Counts the connections it was asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed below
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
    listener.close()
    thread.join(timeout=5)


def test_no_sentinel_answering_is_a_prompt_503_and_the_deploy_check_says_unreachable(
        api, user, hanging_up):
    # redis-py's MasterNotFoundError: no Sentinel names a primary (all down, or unreachable).
    port, accepted = hanging_up
    credentials = {"username": user.username, "password": PASSWORD}
    # The same login with a Redis that hangs up there: the connections the store tries (per
    # store call, its one retry included), whatever redis-py does inside each.
    with override_settings(CACHES=caches_at(f"redis://127.0.0.1:{port}/0")):
        assert_error(api.post(OBTAIN, credentials, format="json"), 503,
                     "token_store_unavailable")
    tries = len(accepted)
    assert tries > 0
    caches = {"default": sentinel_cache(settings.CACHES["default"], service="tokens-nowhere",
                                        sentinels=[("127.0.0.1", port)])}
    with override_settings(CACHES=caches):
        assert_error(api.post(OBTAIN, credentials, format="json"), 503,
                     "token_store_unavailable")
        # The Sentinel asked once per connection tried, not again and again with back-off:
        # the 503 comes as soon as with a dead Redis.
        assert len(accepted) - tries == tries
        assert ids(check_token_redis()) == ["tokens.W003"]
