"""`make bench`: this project against the framework ceiling and djangorestframework-simplejwt.

Starts its own redis-server and gunicorn servers on loopback, drives them with wrk, and
writes bench/results.md and bench/results.json. Every process it starts, it stops.
"""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer, free_port  # noqa: E402

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = 4  # wrk -t4 -c4: one connection per wrk thread, so each holds its own session
WORKERS = 2
PASSWORD = "bench-password-0123"
SECRET_KEY = "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@dataclass
class Target:
    name: str
    settings: str
    obtain: str
    refresh: str
    me: str
    refresh_field: str  # request and response field of the refresh token
    access_field: str
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    def env(self, redis_url: str, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BENCH_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": self.settings,
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{self.directory / 'db.sqlite3'}",
            "REDIS_URL": redis_url,
            "PYTHONPATH": str(ROOT),
            **extra,
        })
        return env


OURS = Target("ours", "bench.ours_settings", "/api/auth/token/", "/api/auth/token/refresh/",
              "/api/auth/me/", "refresh_token", "access_token")
PEER = Target("simplejwt", "bench.peer.settings", "/api/token/", "/api/token/refresh/",
              "/api/me/", "refresh", "access")


def django(target: Target, redis_url: str, *args: str, **env: str) -> str:
    result = subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, check=True,
                            env=target.env(redis_url, **env), capture_output=True, text=True,
                            timeout=300)
    return result.stdout


def prepare(target: Target, redis_url: str) -> None:
    django(target, redis_url, "migrate", "--noinput")
    create = ("from django.contrib.auth import get_user_model; "
              "get_user_model().objects.create_user({!r}, password={!r})")
    django(target, redis_url, "shell", "-c", create.format("bench", PASSWORD))
    django(target, redis_url, "shell", "-c", create.format("benchfast", PASSWORD),
           BENCH_FAST_HASHER="1")


class Server:
    """gunicorn, 2 sync workers (1 thread each), on a free loopback port."""

    def __init__(self, target: Target, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (target.directory / f"gunicorn-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "django.core.wsgi:get_wsgi_application()",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(WORKERS),
             "--worker-class", "sync", "--threads", "1", "--timeout", "60",
             "--backlog", "256"],
            cwd=ROOT, env=target.env(redis_url, **env), stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/ping/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn for {target.name} did not start")

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.base}{path}", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.log.close()


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def script_get(path: str, token: str | None = None) -> str:
    header = f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}\n' if token else ""
    return f'wrk.method = "GET"\nwrk.path = {lua_string(path)}\n{header}'


def script_post(path: str, body: dict) -> str:
    return (f'wrk.method = "POST"\nwrk.path = {lua_string(path)}\n'
            f'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {lua_string(json.dumps(body))}\n")


def script_refresh(target: Target, tokens: list[str]) -> str:
    """Each wrk thread (one connection) holds its own session and always sends its newest token."""
    field_name = target.refresh_field
    return f"""
local tokens = {{{", ".join(lua_string(t) for t in tokens)}}}
local next_index = 0
function setup(thread)
  next_index = next_index + 1
  thread:set("token", tokens[next_index])
end
function request()
  return wrk.format("POST", {lua_string(target.refresh)},
    {{["Content-Type"] = "application/json"}}, '{{"{field_name}":"' .. token .. '"}}')
end
function response(status, headers, body)
  if status == 200 then
    local newest = body:match('"{field_name}"%s*:%s*"([^"]+)"')
    if newest then token = newest end
  end
end
"""


def wrk(base: str, script: str, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            ["wrk", f"-t{CONNECTIONS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
             "--timeout", "10s", "-s", handle.name, base],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    finally:
        os.unlink(handle.name)
    return parse_wrk(result.stdout)


def parse_wrk(output: str) -> dict:
    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output)[1]),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "errors": (int(non_2xx[1]) if non_2xx else 0)
        + (sum(int(n) for n in socket.groups()) if socket else 0),
    }


def measure(name: str, server: Server, make_script) -> dict:
    """Warm up, then RUNS fixed-time runs; the median run by requests/s is reported."""
    print(f"  {name}: ", end="", flush=True)
    wrk(server.base, make_script(), WARMUP)
    runs = []
    for _ in range(RUNS):
        runs.append(wrk(server.base, make_script(), DURATION))
        print(f"{runs[-1]['rps']:.0f} ", end="", flush=True)
    print("req/s")
    return {
        "runs": runs,
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
    }


def bench_target(target: Target, redis_url: str) -> dict:
    print(f"{target.name}:")
    prepare(target, redis_url)
    results = {}
    fast = Server(target, redis_url, BENCH_FAST_HASHER="1")
    try:
        login = {"username": "benchfast", "password": PASSWORD}
        access = fast.post(target.obtain, login)[target.access_field]
        results["ping"] = measure("ping", fast, lambda: script_get("/ping/"))
        results["me"] = measure("me", fast, lambda: script_get(target.me, access))
        results["refresh"] = measure("refresh", fast, lambda: script_refresh(
            target, [fast.post(target.obtain, login)[target.refresh_field]
                     for _ in range(CONNECTIONS)]))
        results["obtain (fast hasher)"] = measure(
            "obtain (fast hasher)", fast, lambda: script_post(target.obtain, login))
    finally:
        fast.stop()
    if target is OURS:
        unchecked = Server(target, redis_url, BENCH_FAST_HASHER="1", BENCH_SESSION_CHECK="0")
        try:
            access = unchecked.post(target.obtain, login)[target.access_field]
            results["me (session check off)"] = measure(
                "me (session check off)", unchecked, lambda: script_get(target.me, access))
        finally:
            unchecked.stop()
    default = Server(target, redis_url)
    try:
        results["obtain (default hasher)"] = measure(
            "obtain (default hasher)", default,
            lambda: script_post(target.obtain, {"username": "bench", "password": PASSWORD}))
    finally:
        default.stop()
    return results


def subprocess_json(target: Target, redis_url: str, module: str) -> dict:
    result = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=True,
                            env=target.env(redis_url, BENCH_FAST_HASHER="1"),
                            capture_output=True, text=True, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine(redis_version: str) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    import django
    import rest_framework
    import rest_framework_simplejwt

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "redis": redis_version,
        "wrk": wrk_version.split()[1] if wrk_version else "?",
        "django": django.get_version(),
        "djangorestframework": rest_framework.VERSION,
        "djangorestframework-simplejwt": rest_framework_simplejwt.__version__,
        "server": f"gunicorn, {WORKERS} workers, worker class sync, 1 thread each",
        "client": f"wrk -t{CONNECTIONS} -c{CONNECTIONS}, keep-alive, on the same 2 cores",
        "database": "SQLite (both)",
        "runs": f"{WARMUP}s warm-up, then {RUNS} runs of {DURATION}s; median reported",
    }


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: run `make bench`, which installs it.")
    redis_server = RedisServer.start()
    try:
        import redis

        redis_version = redis.Redis(port=redis_server.port).info()["redis_version"]
        results = {"machine": machine(redis_version)}
        for target in (OURS, PEER):
            results[target.name] = bench_target(target, redis_server.url)
        results["counts"] = {
            "ours": subprocess_json(OURS, redis_server.url, "bench.counts"),
            "simplejwt": subprocess_json(PEER, redis_server.url, "bench.counts"),
        }
        results["memory"] = subprocess_json(OURS, redis_server.url, "bench.memory")
    finally:
        redis_server.stop()
        for target in (OURS, PEER):
            shutil.rmtree(target.directory, ignore_errors=True)
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    from bench.report import write_markdown

    write_markdown(results, ROOT / "bench" / "results.md")
    print("Wrote bench/results.md and bench/results.json")


if __name__ == "__main__":
    main()
