"""A Redis failover under load, on real processes: a primary, a replica and three Sentinels,
two gunicorn servers configured with REDIS_SENTINELS, clients refreshing and calling `me` in
a loop. The primary is killed (SIGKILL): the clients see 503s for the seconds the failover
takes, retry as a client does (the same token, the same Idempotency-Key), and go on; nobody
is logged out and nothing answers 500. The old primary, restarted, rejoins as a replica."""

import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
import redis

from tests.helpers import ME, REFRESH
from tests.servers import RedisServer
from tests.system.conftest import ApiServer, start_project, wait_for

pytestmark = pytest.mark.timeout(120)

SERVICE = "tokens-failover"
CLIENTS = 4
RETRY_DELAY = 0.2  # seconds between retries of a 503: eager, so the figures measure Redis
# A replica's first sync starts at once, not after Redis's default 5 s wait for others.
NO_SYNC_DELAY = ("--repl-diskless-sync-delay", "0")


@pytest.fixture
def cluster():
    """The primary (the project's Redis, with AOF), a replica of it and three Sentinels that
    know each other and the replica; every process stopped afterwards."""
    project = start_project("--appendonly", "yes", *NO_SYNC_DELAY)
    others: list[RedisServer] = []
    try:
        replica = RedisServer.start("--replicaof", "127.0.0.1", str(project.redis.port),
                                    *NO_SYNC_DELAY)
        others.append(replica)
        wait_for(lambda: info(replica).get("master_link_status") == "up")
        for _ in range(3):
            others.append(RedisServer.start_sentinel(SERVICE, project.redis.port, quorum=2))
        sentinels = others[1:]
        for sentinel in sentinels:
            # Hellos every 0.5 s (default 2 s): the Sentinels find each other sooner, and a
            # returning old primary is reconfigured after 2 s instead of 8 (4 hello periods).
            sentinel_conn(sentinel).execute_command(
                "SENTINEL", "DEBUG", "publish-period", 500, "info-period", 1000)
        wait_for(lambda: all(
            (m := sentinel_conn(s).sentinel_master(SERVICE))["num-other-sentinels"] == 2
            and m["num-slaves"] == 1 for s in sentinels), seconds=15)
        yield project, replica, sentinels
    finally:
        for server in others:
            server.stop()
        project.stop()


def sentinel_conn(sentinel: RedisServer) -> redis.Redis:
    return redis.Redis(port=sentinel.port, socket_timeout=2)


def stopped(clients: list[threading.Thread]) -> bool:
    """Whether a client has stopped on its own (logged out, or a 500)."""
    return not all(client.is_alive() for client in clients)


def each_refreshed(replies: list["Answer"], since: float, times: int = 1) -> bool:
    """Whether every client's refresh has succeeded `times` times, among requests sent after
    `since`."""
    done = Counter(r.client for r in replies
                   if r.sent > since and r.path == REFRESH and r.status == 200)
    return all(done[client] >= times for client in range(CLIENTS))


def info(server: RedisServer) -> dict:
    try:
        return redis.Redis(port=server.port, socket_timeout=2).info("replication")
    except redis.ConnectionError:
        return {}


@dataclass
class Answer:
    client: int
    sent: float
    received: float
    path: str
    status: int
    code: str | None


class Client(threading.Thread):
    """Refreshes and calls `me` in a loop, on the two servers in turn; retries a 503 with the
    same request (the same refresh token and Idempotency-Key) until it is answered. Stops at
    the first 401 or 500 (logged out, or broken), or when told."""

    def __init__(self, number: int, servers: list[ApiServer], pair: dict, stop: threading.Event,
                 replies: list[Answer]):
        super().__init__(daemon=True)
        self.number, self.stop, self.replies = number, stop, replies
        self.servers = itertools.cycle(servers[number % 2:] + servers[:number % 2])
        self.refresh_token, self.access_token = pair["refresh_token"], pair["access_token"]

    def run(self) -> None:
        while not self.stop.is_set():
            key = {"Idempotency-Key": str(uuid.uuid4())}
            reply = self.send("POST", REFRESH, {"refresh_token": self.refresh_token}, None, key)
            if reply is None:
                return
            self.refresh_token = reply.body["refresh_token"]
            self.access_token = reply.body["access_token"]
            if self.send("GET", ME, None, self.access_token, {}) is None:
                return

    def send(self, method, path, body, token, headers):
        """One request, retried while it answers 503; the reply if 200, else None."""
        while True:
            sent = time.monotonic()
            reply = next(self.servers).call(method, path, body, token, headers=headers)
            self.replies.append(Answer(self.number, sent, time.monotonic(), path, reply.status,
                                      reply.code))
            if reply.status != 503 or self.stop.is_set():
                return reply if reply.status == 200 else None
            time.sleep(RETRY_DELAY)


def test_a_sentinel_failover_under_load_logs_no_one_out(cluster):
    project, replica, sentinels = cluster
    sentinel_env = {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in sentinels),
                    "REDIS_SENTINEL_SERVICE": SERVICE}
    servers = [project.start_api(**sentinel_env) for _ in range(2)]
    pairs = [servers[n % 2].login() for n in range(CLIENTS)]
    # The logins are on the replica before anything fails (a lost login cannot be recovered).
    written = info(project.redis)["master_repl_offset"]
    wait_for(lambda: info(replica).get("slave_repl_offset", -1) >= written)

    replies: list[Answer] = []
    stop = threading.Event()
    clients = [Client(n, servers, pairs[n], stop, replies) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        # Under load: every client has refreshed a few times before the primary goes.
        wait_for(lambda: stopped(clients) or each_refreshed(replies, 0, times=3))
        killed = time.monotonic()
        project.redis.kill()
        # Sentinel promotes the replica; every client is answered again afterwards.
        wait_for(lambda: info(replica).get("role") == "master", seconds=20)
        promoted = time.monotonic()
        wait_for(lambda: stopped(clients) or {
            r.client for r in replies if r.sent > promoted and r.status == 200
        } == set(range(CLIENTS)), seconds=15)
        failover_end = time.monotonic()
        # The old primary comes back (from its AOF) and Sentinel makes it a replica of the
        # new one; the clients go on meanwhile.
        project.redis.restart()
        wait_for(lambda: info(project.redis).get("role") == "slave"
                 and info(project.redis).get("master_port") == replica.port
                 and info(project.redis).get("master_link_status") == "up"
                 or stopped(clients), seconds=20)
        rejoined = time.monotonic()
        # And every client refreshed since, the old primary a replica again.
        wait_for(lambda: stopped(clients) or each_refreshed(replies, rejoined))
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=15)

    statuses = Counter(r.status for r in replies)
    failover = [r for r in replies if killed <= r.received <= failover_end]
    after = [r for r in replies if r.sent > failover_end]
    last_503 = {r.client: r.received for r in failover if r.status == 503}
    recovered = max((min((r.received for r in replies if r.client == c and r.received > t
                          and r.status == 200), default=float("inf"))
                     for c, t in last_503.items()), default=killed)
    print(f"\nfailover under load ({CLIENTS} clients, 2 gunicorn servers, down-after 1000 ms): "
          f"{len(replies)} requests, statuses {dict(sorted(statuses.items()))}; "
          f"401s {statuses[401]}, 500s {statuses[500]}, 503s {statuses[503]} "
          f"({sum(r.status == 503 for r in failover)} in the failover); every client answered "
          f"again {recovered - killed:.1f} s after the kill (replica promoted after "
          f"{promoted - killed:.1f} s); old primary rejoined as a replica "
          f"{rejoined - failover_end:.1f} s after its restart; {len(after)} requests since, "
          f"statuses {dict(Counter(r.status for r in after))}")
    assert not [r for r in replies if r.status not in (200, 503)], Counter(
        (r.status, r.code) for r in replies)
    assert all(r.code == "token_store_unavailable" for r in replies if r.status == 503)
    assert set(last_503) == set(range(CLIENTS))  # every client saw the failover, and got over it
    assert {r.status for r in after} == {200}
    assert not any(client.is_alive() for client in clients)
