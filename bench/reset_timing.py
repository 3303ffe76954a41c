"""`make bench-reset`: does the reset endpoint's answer time tell whether an address has an
account? Times POST /api/auth/password/reset/ for an address with an account and for one
without, interleaved, on gunicorn (2 sync workers) with Django's own PBKDF2 and the console
email backend; the limits are off for the run (test-only switch), the rest as shipped.
Writes bench/reset_timing.md. Every process it starts, it stops.
"""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.system.conftest import start_project  # noqa: E402

ROUNDS = 200
PATH = "/api/auth/password/reset/"


def timed(api, email: str) -> float:
    started = time.perf_counter()
    reply = api.call("POST", PATH, {"email": email})
    elapsed = time.perf_counter() - started
    if reply.status != 202:
        raise RuntimeError(f"{reply.status} {reply.code}")
    return elapsed * 1000


def main() -> None:
    project = start_project(TOKENS_TEST_HASHER="django", TOKENS_LOGIN_LIMITS="off")
    try:
        project.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                       "u = get_user_model().objects.get(username='alice'); "
                       "u.email = 'alice@example.com'; u.save()")
        api = project.start_api()
        for _ in range(20):  # warm-up
            timed(api, "alice@example.com"), timed(api, "nobody@example.com")
        account, none = [], []
        for _ in range(ROUNDS):
            account.append(timed(api, "alice@example.com"))
            none.append(timed(api, "nobody@example.com"))
    finally:
        project.stop()

    def row(name, values):
        ordered = sorted(values)
        return (f"| {name} | {statistics.median(values):.2f} | {ordered[len(ordered) // 10]:.2f} "
                f"| {ordered[len(ordered) * 9 // 10]:.2f} |")

    lines = [
        "# Password reset: answer time with and without an account",
        "",
        f"`make bench-reset` (bench/reset_timing.py): {ROUNDS} requests each, interleaved, one at",
        "a time, gunicorn with 2 sync workers, Django's PBKDF2, the console email backend (the",
        "email is written after the response), login and reset limits off for the run.",
        "Milliseconds from sending the request to reading the 202.",
        "",
        "| address | median | p10 | p90 |",
        "|---|---:|---:|---:|",
        row("has an account", account),
        row("has none", none),
        "",
        f"Median difference: {statistics.median(account) - statistics.median(none):+.2f} ms.",
    ]
    (ROOT / "bench" / "reset_timing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
