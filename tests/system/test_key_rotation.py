"""A rolling SECRET_KEY rotation across two gunicorn servers on one Redis, while clients keep
refreshing and calling `me` on whichever server answers: no one is logged out."""

import threading
import time
from collections import Counter

import pytest

from tests.helpers import ME
from tests.system.conftest import wait_for

pytestmark = pytest.mark.timeout(300)

OLD = "rolling-rotation-old-secret-key-0123456789-abcdefghijklmnopq"
NEW = "rolling-rotation-new-secret-key-9876543210-zyxwvutsrqponmlkj"


class Clients(threading.Thread):
    """Sessions that refresh and call `me` in turns, on the servers in `servers[0]`."""

    def __init__(self, servers: list, pairs: list[dict]) -> None:
        super().__init__(daemon=True)
        self.servers, self.pairs, self.replies = servers, pairs, []
        self.issuers = [None] * len(pairs)  # the server that issued each session's tokens
        self.answers = Counter()  # refreshes answered, by server (its id)
        self.stopping = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.stopping.is_set() and turn < 5000:
            turn += 1
            index = turn % len(self.pairs)
            for server in self.servers[turn % 2:] + self.servers[:turn % 2]:
                try:
                    reply = server.refresh(self.pairs[index]["refresh_token"])
                    self.replies.append(reply)
                    self.answers[id(server)] += 1
                    if reply.status == 200:
                        self.pairs[index], self.issuers[index] = reply.body, server
                        self.replies.append(server.call("GET", ME,
                                                        token=reply.body["access_token"]))
                    break
                except OSError:
                    continue  # that server is restarting: the other answers
            time.sleep(0.01)


def test_a_rolling_secret_key_rotation_logs_no_one_out(project):
    a, b = project.start_api(DJANGO_SECRET_KEY=OLD), project.start_api(DJANGO_SECRET_KEY=OLD)
    servers = [a, b]
    clients = Clients(servers, [a.login() for _ in range(4)])
    clients.start()

    def restart(position: int, key: str, fallbacks: str) -> None:
        servers[position].stop()
        server = project.start_api(DJANGO_SECRET_KEY=key, DJANGO_SECRET_KEY_FALLBACKS=fallbacks)
        servers[position] = server
        # Some traffic on the new configuration: a few refreshes of each session it serves.
        wait_for(lambda: clients.answers[id(server)] >= 2 * len(clients.pairs), seconds=30)

    try:
        for position in (1, 0):  # 1. the new key verifies everywhere before it signs
            restart(position, OLD, NEW)
        for position in (1, 0):  # 2. the new key signs, the old one verifies
            restart(position, NEW, OLD)
        # Every session has refreshed under the new key: its tokens come from one of the
        # servers that sign with it.
        wait_for(lambda: all(any(issuer is server for server in servers)
                             for issuer in clients.issuers), seconds=30)
        for position in (1, 0):  # 3. the old key retired (after REFRESH_TOKEN_LIFETIME)
            restart(position, NEW, "")
    finally:
        clients.stopping.set()
        clients.join(timeout=30)
    statuses = [reply.status for reply in clients.replies]
    assert len(statuses) > 100
    assert statuses.count(401) == 0, [r for r in clients.replies if r.status == 401][:3]
    assert set(statuses) == {200}
