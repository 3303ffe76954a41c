"""`make bench-scripts`: how long Redis is held by the scripts of the flows that end or
re-stamp every session of a user, for a user with many sessions (successful logins are not
limited, so any user can make thousands). Redis runs one script at a time: while one runs,
every other user's request waits.

For each count, a user gets that many sessions (written straight to the store, as that many
logins would), then a password change through the API (gunicorn, as shipped but for the
test hasher), then logout-all. Redis's SLOWLOG, with no threshold, records every command's
time inside Redis: the table shows the longest single command (the stall another user
sees) and the sum over the flow. Also run against another checkout (`BENCH_TREE=...`) for
comparison. Writes bench/scripts.md. Every process it starts, it stops.
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import redis  # noqa: E402

from tests.helpers import PASSWORD  # noqa: E402
from tests.system.conftest import start_project  # noqa: E402

COUNTS = (1_001, 2_201, 10_000)
NEW_PASSWORD = "a much better passphrase 42"


def add_sessions(count: int) -> None:
    """`count` sessions of alice (this process is configured like the servers: same
    database, Redis and keys)."""
    from django.contrib.auth import get_user_model

    from tests.helpers import add_sessions as add

    add(get_user_model().objects.get(username="alice"), count, user_agent="bench")


def slowest(conn: redis.Redis) -> tuple[float, float, int]:
    """Since the last reset: the longest command (a script counts whole: SLOWLOG also lists
    the commands a script runs, each inside its script's time), the time in scripts, and
    how many scripts ran (ms)."""
    entries = [entry for entry in conn.slowlog_get(1_000_000)
               if not entry["command"].upper().startswith((b"SLOWLOG", b"CONFIG"))]
    scripts = [entry["duration"] / 1000 for entry in entries
               if entry["command"].upper().startswith((b"EVALSHA", b"EVAL "))]
    longest = max((entry["duration"] / 1000 for entry in entries), default=0.0)
    return longest, sum(scripts), len(scripts)


def settle(conn: redis.Redis) -> None:
    """Wait (up to two minutes) until Redis answers again: a script that runs for seconds
    keeps running after the request that sent it answered 503 (BUSY for everyone else)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            conn.ping()
            return
        except redis.ResponseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def watched(conn: redis.Redis, do) -> tuple[float, float, int, float, int]:
    conn.slowlog_reset()
    started = time.perf_counter()
    status = do()
    elapsed = (time.perf_counter() - started) * 1000
    settle(conn)
    return (*slowest(conn), elapsed, status)


def run(api, conn: redis.Redis, count: int, password: str, new_password: str) -> dict:
    current = api.call("POST", "/api/auth/token/", {"username": "alice", "password": password})
    add_sessions(count)
    change = watched(conn, lambda: api.call(
        "POST", "/api/auth/password/", {"old_password": password, "new_password": new_password},
        token=current.body["access_token"]).status)
    current = api.call("POST", "/api/auth/token/", {"username": "alice",
                                                    "password": new_password})
    if current.status != 200:  # the change failed: the old password still stands
        new_password = password
        current = api.call("POST", "/api/auth/token/", {"username": "alice",
                                                        "password": password})
    add_sessions(count)
    logout_all = watched(conn, lambda: api.call(
        "POST", "/api/auth/logout-all/", token=current.body["access_token"]).status)
    left = len(list(conn.scan_iter(match="*:s:*")))
    return {"count": count, "change": change, "logout_all": logout_all, "left": left,
            "password": new_password}


def main() -> None:
    project = start_project()
    try:
        os.environ.update(project.env())
        import django

        django.setup()
        api = project.start_api()
        conn = redis.Redis(port=project.redis.port)
        conn.config_set("slowlog-log-slower-than", 0)
        conn.config_set("slowlog-max-len", 1_000_000)
        rows, password = [], PASSWORD
        for count in COUNTS:
            other = NEW_PASSWORD if password == PASSWORD else PASSWORD
            rows.append(run(api, conn, count, password, other))
            password = rows[-1]["password"]
    finally:
        project.stop()
    lines = [
        "# Scripts that end many sessions: how long they hold Redis",
        "",
        f"`make bench-scripts` (bench/scripts.py), tree `{ROOT.name}`: a user with N sessions,",
        "then a password change (API, gunicorn, 2 sync workers, test hasher) and, after N new",
        "sessions, logout-all. Redis's SLOWLOG with no threshold: the longest single command, a",
        "script counted whole (what every other request waits behind), the time spent in the",
        "flow's scripts and their number, and the request's own answer time, in ms.",
        "",
        "| sessions | flow | status | longest command | time in scripts | scripts | answer |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for flow in ("change", "logout_all"):
            longest, total, commands, elapsed, status = row[flow]
            lines.append(f"| {row['count']:,} | {flow.replace('_', '-')} | {status} | "
                         f"{longest:.1f} | {total:.1f} | {commands:,} | {elapsed:.0f} |")
    lines += ["", "Sessions left in Redis after logout-all: "
              + ", ".join(f"{row['left']} (N={row['count']:,})" for row in rows) + "."]
    out = Path(__file__).resolve().parent / "scripts.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
