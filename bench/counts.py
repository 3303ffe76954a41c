"""SQL queries and Redis round trips of one request of each kind, counted in-process.

Run by bench/run.py under either target's settings; prints one JSON line.
"""

import json
import os

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from redis.connection import Connection  # noqa: E402

OURS = os.environ["DJANGO_SETTINGS_MODULE"] == "bench.ours_settings"
OBTAIN, REFRESH, ME = (
    ("/api/auth/token/", "/api/auth/token/refresh/", "/api/auth/me/") if OURS
    else ("/api/token/", "/api/token/refresh/", "/api/me/")
)
REFRESH_FIELD, ACCESS_FIELD = ("refresh_token", "access_token") if OURS else ("refresh", "access")
round_trips = 0
_send = Connection.send_packed_command


def _counting_send(self, command, check_health=True):
    global round_trips
    round_trips += 1
    return _send(self, command, check_health)


Connection.send_packed_command = _counting_send
client = Client(HTTP_HOST="127.0.0.1")


def count(method: str, path: str, body: dict | None = None, token: str | None = None):
    global round_trips
    round_trips = 0
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    client.cookies.clear()  # as wrk: no device cookie (a login is counted per username and address)
    with CaptureQueriesContext(connection) as queries:
        if method == "GET":
            response = client.get(path, **headers)
        else:
            response = client.post(path, body, content_type="application/json", **headers)
    assert response.status_code in (200, 204), (path, response.status_code, response.content)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    cost = {"sql": len(statements), "inserts": statements.count("INSERT"),
            "redis_round_trips": round_trips}
    return cost, (response.json() if response.status_code == 200 else None)


login = {"username": "benchfast", "password": "bench-password-0123"}
# Warm-up: connections opened and Redis scripts loaded, as in a running server.
pair = client.post(OBTAIN, login, content_type="application/json").json()
pair = client.post(REFRESH, {REFRESH_FIELD: pair[REFRESH_FIELD]},
                   content_type="application/json").json()
client.get(ME, HTTP_AUTHORIZATION=f"Bearer {pair[ACCESS_FIELD]}")

costs = {}
costs["obtain"], pair = count("POST", OBTAIN, login)
costs["refresh"], pair = count("POST", REFRESH, {REFRESH_FIELD: pair[REFRESH_FIELD]})
costs["me"], _ = count("GET", ME, token=pair[ACCESS_FIELD])
if OURS:
    spare = client.post(OBTAIN, login, content_type="application/json").json()
    client.post("/api/auth/logout/", {"refresh_token": spare["refresh_token"]},
                content_type="application/json")  # loads the logout script
    costs["logout"], _ = count("POST", "/api/auth/logout/", {"refresh_token": pair[REFRESH_FIELD]})
print(json.dumps(costs))
