"""`make bench-outage`: how long a request waits for its 503 when the token Redis is hung
(SIGSTOP) or gone (killed), on the settings as shipped (config.settings: REDIS_TIMEOUT 0.5 s,
one immediate retry), gunicorn with 2 sync workers, Django's own PBKDF2. Writes
bench/outage.md. Every process it starts, it stops.
"""

import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.system.conftest import start_project  # noqa: E402

REQUESTS = 20  # per endpoint and failure mode, one at a time
REFRESH, ME, OBTAIN = "/api/auth/token/refresh/", "/api/auth/me/", "/api/auth/token/"


def timed(api, method: str, path: str, body=None, token=None) -> float:
    started = time.perf_counter()
    reply = api.call(method, path, body, token)
    elapsed = time.perf_counter() - started
    if (reply.status, reply.code) != (503, "token_store_unavailable"):
        raise RuntimeError(f"{method} {path}: {reply.status} {reply.code}, not a 503")
    return elapsed


def measure(api, pair: dict) -> dict[str, list[float]]:
    requests = {
        "refresh": lambda: timed(api, "POST", REFRESH, {"refresh_token": pair["refresh_token"]}),
        "me": lambda: timed(api, "GET", ME, token=pair["access_token"]),
        "login": lambda: timed(api, "POST", OBTAIN, {"username": "alice", "password": "x" * 12}),
    }
    return {name: [request() for _ in range(REQUESTS)] for name, request in requests.items()}


def row(mode: str, name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (f"| {mode} | {name} | {statistics.median(seconds):.3f} | {p95:.3f} | "
            f"{max(seconds):.3f} |")


def main() -> None:
    project = start_project("--appendonly", "yes", DJANGO_SETTINGS_MODULE="config.settings")
    try:
        api = project.start_api()
        pair = api.login()
        results = {}
        project.redis.process.send_signal(signal.SIGSTOP)
        try:
            results["hung (SIGSTOP)"] = measure(api, pair)
        finally:
            project.redis.process.send_signal(signal.SIGCONT)
        project.redis.kill()
        results["gone (killed)"] = measure(api, pair)
        project.redis.restart()
        if api.refresh(pair["refresh_token"]).status != 200:
            raise RuntimeError("the session did not survive the outage")
    finally:
        project.stop()
    lines = [
        "# Time to a 503 when the token Redis fails",
        "",
        "`make bench-outage` (bench/outage.py): config.settings as shipped (REDIS_TIMEOUT 0.5 s,",
        "one immediate retry, no back-off), gunicorn with 2 sync workers, Redis on loopback, the",
        f"client on the same machine, {REQUESTS} requests per row one at a time. Seconds from",
        "sending the request to reading the 503 `token_store_unavailable`.",
        "",
        "| Redis | request | median | p95 | max |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [row(mode, name, seconds) for mode, by_name in results.items()
              for name, seconds in by_name.items()]
    (ROOT / "bench" / "outage.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
