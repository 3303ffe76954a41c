"""`make bench-reset`: can a client tell whether an address has an account from when the
reset endpoint's answer ends? POST /api/auth/password/reset/ over a raw socket, for an
address with an account and one without, interleaved, one at a time, on gunicorn (2 sync
workers); timed from sending to the complete body, and from the complete body to the end
of the stream (the server closing the connection). Against a local SMTP sink (tests/smtp.py)
answering at once, then one that waits 20 ms before each reply, then with no SMTP at all
(the dummy backend, `make serve` without DJANGO_EMAIL_HOST). Django's PBKDF2; the limits
are off for the run (test-only switch), the rest as shipped. Writes bench/reset_timing.md.
Every process it starts, it stops.
"""

import json
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.smtp import SmtpSink  # noqa: E402
from tests.system.conftest import start_project  # noqa: E402

ROUNDS = 200
WARM_UP = 20
PATH = "/api/auth/password/reset/"
ACCOUNT, NONE = "alice@example.com", "nobody@example.com"
SCENARIOS = [("SMTP sink", 0.0), ("SMTP sink, 20 ms per reply", 0.02), ("no SMTP (dummy)", None)]

# This script once, run against the code before issue 21 (e5317d3: the email sent in the
# response's close(), before gunicorn closed the connection; the console backend without
# SMTP). Kept as measured, for comparison; not re-run.
BEFORE = """\
| mail | address | body to end: median | p10 | p90 | max | tells (body to end) |
|---|---|---:|---:|---:|---:|---:|
| SMTP sink | has an account | 2.07 | 1.58 | 2.77 | 43.24 | 100 % |
| SMTP sink | has none | 0.38 | 0.00 | 0.63 | 1.97 | |
| SMTP sink, 20 ms per reply | has an account | 146.42 | 144.98 | 150.88 | 272.56 | 100 % |
| SMTP sink, 20 ms per reply | has none | 0.89 | 0.00 | 1.47 | 32.42 | |
| no SMTP (then: the console) | has an account | 0.71 | 0.00 | 0.96 | 42.43 | 78 % |
| no SMTP (then: the console) | has none | 0.37 | 0.00 | 0.54 | 4.72 | |"""


def timed(port: int, email: str) -> tuple[float, float]:
    """(ms from sending to the complete body, ms from the complete body to end of stream)."""
    data = json.dumps({"email": email}).encode()
    request = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received, body_at = b"", None
        started = time.perf_counter()
        sock.sendall(request)
        while chunk := sock.recv(65536):
            received += chunk
            if body_at is None and _complete(received):
                body_at = time.perf_counter()
        ended = time.perf_counter()
    if not received.startswith(b"HTTP/1.1 202 ") or body_at is None:
        raise RuntimeError(received[:200])
    return (body_at - started) * 1000, (ended - body_at) * 1000


def _complete(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return len(body) >= length


def tells(account: list[float], none: list[float]) -> float:
    """How often one request tells: a threshold (and which side is the account) chosen on
    the even rounds, then scored on the odd ones; 50 % is a coin toss."""
    def score(a, n, threshold, account_above):
        right = sum((x > threshold) == account_above for x in a)
        right += sum((x > threshold) != account_above for x in n)
        return right / (len(a) + len(n))

    train_a, train_n, test_a, test_n = account[::2], none[::2], account[1::2], none[1::2]
    candidates = [(t, above) for t in sorted(train_a + train_n) for above in (True, False)]
    best = max(candidates, key=lambda c: score(train_a, train_n, *c))
    return score(test_a, test_n, *best) * 100


def run(project, delay: float | None) -> dict:
    sink = SmtpSink.start(delay=delay) if delay is not None else None
    env = {"DJANGO_PASSWORD_RESET_URL": "https://app.example.test/reset#{uid}/{token}"}
    if sink:
        env |= {"DJANGO_EMAIL_HOST": "127.0.0.1", "DJANGO_EMAIL_PORT": str(sink.port),
                "DJANGO_EMAIL_USE_TLS": "0"}
    api = project.start_api(**env)
    try:
        for _ in range(WARM_UP):
            timed(api.port, ACCOUNT), timed(api.port, NONE)
        account, none = [], []
        for _ in range(ROUNDS):
            account.append(timed(api.port, ACCOUNT))
            none.append(timed(api.port, NONE))
        emails = len(sink.wait_for_messages(WARM_UP + ROUNDS, seconds=120)) if sink else None
    finally:
        api.stop()
        if sink:
            sink.stop()
    return {"account": account, "none": none, "emails": emails}


def main() -> None:
    project = start_project(TOKENS_TEST_HASHER="django", TOKENS_LOGIN_LIMITS="off")
    try:
        project.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                       "get_user_model().objects.filter(username='alice')"
                       f".update(email={ACCOUNT!r})")
        results = [(name, run(project, delay)) for name, delay in SCENARIOS]
    finally:
        project.stop()
    lines = report(results)
    (ROOT / "bench" / "reset_timing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(results: list) -> list[str]:
    def cells(values):
        ordered = sorted(values)
        return (f"{statistics.median(values):.2f} | {ordered[len(ordered) // 10]:.2f} | "
                f"{ordered[len(ordered) * 9 // 10]:.2f} | {ordered[-1]:.2f}")

    lines = [
        "# Password reset: when the answer ends, with and without an account",
        "",
        f"`make bench-reset` (bench/reset_timing.py): {ROUNDS} requests each for an address",
        "with an account and one without, interleaved, one at a time, over a raw socket to",
        "gunicorn (2 sync workers), Django's PBKDF2, limits off for the run. Milliseconds from",
        "the complete body of the 202 to the end of the stream (the server closing the",
        "connection), and from sending the request to the complete body. \"Tells\": how often",
        "one request's time says which address it was (threshold chosen on half the rounds,",
        "scored on the other half; 50 % is a coin toss).",
        "",
        "| mail | address | body to end: median | p10 | p90 | max | send to body: median "
        "| tells (body to end) | tells (send to end) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results:
        eof = {k: [t[1] for t in result[k]] for k in ("account", "none")}
        total = {k: [sum(t) for t in result[k]] for k in ("account", "none")}
        told = f"{tells(eof['account'], eof['none']):.0f} %"
        told_total = f"{tells(total['account'], total['none']):.0f} %"
        for key, label in (("account", "has an account"), ("none", "has none")):
            body = statistics.median(t[0] for t in result[key])
            lines.append(f"| {name} | {label} | {cells(eof[key])} | {body:.2f} | "
                         f"{told if key == 'account' else ''} | "
                         f"{told_total if key == 'account' else ''} |")
    lines.append("")
    for name, result in results:
        if result["emails"] is not None:
            lines.append(f"- {name}: {result['emails']} of {WARM_UP + ROUNDS} reset emails "
                         "received by the sink (warm-up included).")
    return lines + ["", "Before issue 21 (this script once against e5317d3, where the email "
                    "was sent before the", "connection closed):", "", BEFORE]


if __name__ == "__main__":
    main()
