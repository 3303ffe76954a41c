"""What one request costs in SQL queries and Redis round trips; a change that raises these fails.

A round trip is one write of commands to Redis and the wait for their replies: a single
command, a pipeline, or a Lua script each count once. Counted at redis-py's socket send.
"""

import pytest
from redis.connection import Connection
from rest_framework.test import APIClient

from tests.helpers import LOGOUT, ME, OBTAIN, PASSWORD, REFRESH

pytestmark = pytest.mark.django_db

# The ceilings: what each costs today, with the login limits on as shipped (the targets were
# refresh <= 1 SQL + 2 round trips, an authenticated request <= 1 SQL + 1 round trip). A
# login: the user's row and its `last_login`; in Redis, the attempt held against the limits,
# then the new session written and the attempt released in one script. A wrong password: the user's row; the attempt held,
# then counted as a failure.
MAX = {
    "refresh": {"sql": 1, "redis": 1},
    "me": {"sql": 1, "redis": 1},
    "obtain": {"sql": 2, "redis": 2},
    "obtain, wrong password": {"sql": 1, "redis": 2},
    "logout": {"sql": 0, "redis": 1},
}


@pytest.fixture
def redis_round_trips(monkeypatch):
    counter = {"n": 0}
    send = Connection.send_packed_command

    def counting_send(self, command, check_health=True):
        counter["n"] += 1
        return send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting_send)
    return counter


def measure(django_assert_max_num_queries, redis_round_trips, kind, do, statuses=(200, 204)):
    redis_round_trips["n"] = 0
    with django_assert_max_num_queries(MAX[kind]["sql"]) as queries:
        response = do()
    assert response.status_code in statuses, response.content
    assert redis_round_trips["n"] <= MAX[kind]["redis"], (kind, redis_round_trips["n"])
    return len(queries), redis_round_trips["n"]


def test_request_costs(api, user, login, django_assert_max_num_queries, redis_round_trips):
    # Warm up: connections opened, scripts loaded into Redis (as after a process's first requests).
    pair = login(user)
    pair = api.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json").json()
    api.post(LOGOUT, {"refresh_token": login(user)["refresh_token"]}, format="json")

    # Logins from clients without a device cookie (an API client, a first login): counted
    # against the username and the address.
    costs = {
        "obtain": measure(django_assert_max_num_queries, redis_round_trips, "obtain",
                          lambda: APIClient().post(OBTAIN, {"username": "alice",
                                                            "password": PASSWORD}, format="json")),
        "obtain, wrong password": measure(
            django_assert_max_num_queries, redis_round_trips, "obtain, wrong password",
            lambda: APIClient().post(OBTAIN, {"username": "alice", "password": "not it"},
                                     format="json"),
            statuses=(401,)),
        "refresh": measure(django_assert_max_num_queries, redis_round_trips, "refresh",
                           lambda: api.post(REFRESH, {"refresh_token": pair["refresh_token"]},
                                            format="json")),
        "me": measure(django_assert_max_num_queries, redis_round_trips, "me",
                      lambda: api.get(ME, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")),
        "logout": measure(django_assert_max_num_queries, redis_round_trips, "logout",
                          lambda: api.post(LOGOUT, {"refresh_token": pair["refresh_token"]},
                                           format="json")),
    }
    print("\ncosts (sql, redis round trips):", costs)
