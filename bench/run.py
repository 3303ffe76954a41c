"""`make bench`: this project, as shipped, against the framework ceiling and
djangorestframework-simplejwt.

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

from bench.report import REPLICA_ACKS as REPLICA_ACKS_SCENARIO  # noqa: E402
from tests.servers import RedisServer, free_port  # noqa: E402

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = 8  # wrk -t8 -c8: one connection per wrk thread, so each holds its own session
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
PASSWORD = "bench-password-0123"
SECRET_KEY = "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Everything the benchmark changes from the configuration a user gets (config.settings, the
# Redis of `make serve`), for the load itself; results.md lists it next to the numbers.
CHANGES = [
    "Password hasher: MD5, on both sides, on the servers of every scenario but `obtain "
    "(default hasher)`, so that a login measures the token service rather than PBKDF2; "
    "`obtain (default hasher)` runs each side's default (PBKDF2).",
    "`me (session check off)`: `CHECK_SESSION_ON_ACCESS = False`, for comparison only; every "
    "other scenario of ours runs with the check on, as shipped.",
    "`me (metrics off)` and `refresh (metrics off)`: `DJANGO_METRICS=0`, for comparison only; "
    "every other scenario of ours counts its Prometheus metrics, as shipped.",
    "`refresh (REPLICA_ACKS=1, one replica)`: `TOKENS['REPLICA_ACKS'] = 1`, for comparison "
    "only, on a Redis of its own: a primary as the others (AOF on) with one replica on "
    "loopback, attached before the runs start. Every other scenario's Redis has no replica, "
    "as `make serve` starts it. Its Redis CPU per request counts the primary and the replica.",
    "Login limits on, as shipped. Every login here has the right password: it holds one "
    "attempt of the username's budget (5) only while its password is checked, at most one "
    "per worker, and releases it; the address's budget counts failures only.",
    "Lifetimes as shipped (access tokens live 5 minutes): each run of `me` logs in afresh for "
    f"its access token, each run of `refresh` starts {CONNECTIONS} fresh sessions.",
    "gunicorn started from the command line (2 sync workers, no access log) for both sides, "
    "not with config/gunicorn.conf.py, which `make serve` uses and which logs every request. "
    "Ours gets what that config does for metrics: PROMETHEUS_MULTIPROC_DIR, a fresh empty "
    "directory per server (every observation a write to a memory-mapped file), removed after.",
    "A `ping` view (a bare DRF view, no authentication) added to both: the framework's ceiling.",
    "simplejwt: `ROTATE_REFRESH_TOKENS`, `BLACKLIST_AFTER_ROTATION` and `UPDATE_LAST_LOGIN` "
    "on (off by default), its refresh lifetime 30 days as ours; the project's middleware and "
    "database settings (SQLite in WAL: a stock Django project runs SQLite in its rollback "
    "journal, where every login's writes wait on the disk).",
]


@dataclass
class Target:
    name: str
    settings: str
    obtain: str
    refresh: str
    me: str
    refresh_field: str  # request and response field of the refresh token
    access_field: str
    multiprocess_metrics: bool  # Prometheus metrics in files, as config/gunicorn.conf.py sets
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    def env(self, redis_url: str, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "BENCH_", "PROMETHEUS_"))}
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
              "/api/auth/me/", "refresh_token", "access_token", multiprocess_metrics=True)
PEER = Target("simplejwt", "bench.peer.settings", "/api/token/", "/api/token/refresh/",
              "/api/me/", "refresh", "access", multiprocess_metrics=False)


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
    """gunicorn, 2 workers (sync unless BENCH_WORKER_CLASS says otherwise), on a loopback port,
    using the Redis at `redis_url` (run by the processes `redis_pids`)."""

    def __init__(self, target: Target, redis_url: str, redis_pids: list[int], **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.redis_pids = redis_pids
        self.metrics_dir = None
        if target.multiprocess_metrics:
            # As config/gunicorn.conf.py: a fresh, empty directory for this server's samples.
            # Its other hook, mark_process_dead on a worker's exit, only drops live gauges
            # (there are none) and does nothing while no worker dies, as in a run.
            self.metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=target.directory))
            env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)}
        self.log = (target.directory / f"gunicorn-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "django.core.wsgi:get_wsgi_application()",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(WORKERS),
             "--worker-class", WORKER_CLASS, "--threads", str(THREADS), "--timeout", "60",
             "--backlog", "256", "--no-control-socket"],  # as config/gunicorn.conf.py
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

    def cpu_seconds(self) -> float:
        """CPU time used so far by gunicorn's master and workers (user + system)."""
        return process_cpu_seconds([self.process.pid, *children(self.process.pid)])

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
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


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


@dataclass
class Scenario:
    target: Target
    name: str
    server: Server
    make_script: object  # () -> wrk Lua script; called afresh for every run
    runs: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "runs": self.runs,
            "rps": statistics.median(r["rps"] for r in self.runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in self.runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in self.runs),
            "errors": sum(r["errors"] for r in self.runs),
            "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in self.runs),
            "redis_cpu_ms": statistics.median(r["redis_cpu_ms"] for r in self.runs),
            "requests": sum(r["requests"] for r in self.runs),
        }


def scenarios_of(target: Target, fast: Server, default: Server, *,
                 unchecked: Server | None = None, metrics_off: Server | None = None,
                 replica_acks: Server | None = None) -> list[Scenario]:
    """The scenarios of one side; ours also runs the comparison servers (each, when given)."""
    login = {"username": "benchfast", "password": PASSWORD}

    def me_of(server: Server):
        # A fresh access token for every run: it lives 5 minutes, a whole bench much longer.
        return lambda: script_get(target.me,
                                  server.post(target.obtain, login)[target.access_field])

    def fresh_sessions(server: Server):
        # Sessions of the server under test: its Redis may not be the others'.
        return lambda: script_refresh(target, [
            server.post(target.obtain, login)[target.refresh_field] for _ in range(CONNECTIONS)])

    scenarios = [
        Scenario(target, "ping", fast, lambda: script_get("/ping/")),
        Scenario(target, "me", fast, me_of(fast)),
        unchecked and Scenario(target, "me (session check off)", unchecked, me_of(unchecked)),
        metrics_off and Scenario(target, "me (metrics off)", metrics_off, me_of(metrics_off)),
        Scenario(target, "refresh", fast, fresh_sessions(fast)),
        metrics_off and Scenario(target, "refresh (metrics off)", metrics_off,
                                 fresh_sessions(metrics_off)),
        replica_acks and Scenario(target, REPLICA_ACKS_SCENARIO, replica_acks,
                                  fresh_sessions(replica_acks)),
        Scenario(target, "obtain (fast hasher)", fast, lambda: script_post(target.obtain, login)),
        Scenario(target, "obtain (default hasher)", default, lambda: script_post(
            target.obtain, {"username": "bench", "password": PASSWORD})),
    ]
    return [scenario for scenario in scenarios if scenario]


def run_scenarios(scenarios: list[Scenario]) -> None:
    """Warm each up, then RUNS rounds in which every scenario runs once.

    Rounds, rather than all runs of one scenario back to back: this machine's speed drifts
    by tens of percent over minutes, and the targets compare scenarios with each other.
    """
    for scenario in scenarios:
        wrk(scenario.server.base, scenario.make_script(), WARMUP)
    for round_number in range(1, RUNS + 1):
        print(f"round {round_number}/{RUNS}:")
        for scenario in scenarios:
            script = scenario.make_script()
            redis_pids = scenario.server.redis_pids
            server_cpu, redis_cpu = scenario.server.cpu_seconds(), process_cpu_seconds(redis_pids)
            run = wrk(scenario.server.base, script, DURATION)
            # CPU per request, in ms: steadier than throughput on a machine whose speed drifts.
            run["server_cpu_ms"] = 1000 * (scenario.server.cpu_seconds() - server_cpu) / max(
                run["requests"], 1)
            run["redis_cpu_ms"] = 1000 * (process_cpu_seconds(redis_pids) - redis_cpu) / max(
                run["requests"], 1)
            scenario.runs.append(run)
            print(f"  {scenario.target.name:9} {scenario.name:38} "
                  f"{scenario.runs[-1]['rps']:8.0f} req/s", flush=True)


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
        "wrk": wrk_version.split()[1] if wrk_version else "?",
        "django": django.get_version(),
        "djangorestframework": rest_framework.VERSION,
        "djangorestframework-simplejwt": rest_framework_simplejwt.__version__,
        "server": f"gunicorn, {WORKERS} workers, worker class {WORKER_CLASS}, "
                  f"{THREADS} thread(s) each",
        "client": f"wrk -t{CONNECTIONS} -c{CONNECTIONS}, on the same cores",
        "database": "SQLite from DATABASE_URL with the project's settings (WAL, busy "
                    "timeout, IMMEDIATE transactions), for both",
        "redis": redis_version,
        "redis_setup": "reached through its Unix socket, AOF on (appendfsync everysec), as "
                       "`make serve` starts it, no replica; `" + REPLICA_ACKS_SCENARIO + "` has a Redis of its own, "
                       "the same with one replica",
        "runs": f"{WARMUP}s warm-up each, then {RUNS} rounds in which every scenario runs "
                f"{DURATION}s; the median of the {RUNS} runs is reported",
    }


def wait_for_replica(primary: RedisServer, seconds: float = 30) -> None:
    """Wait until the primary lists one replica, in sync (INFO replication: online)."""
    import redis

    client = redis.Redis(port=primary.port)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            info = client.info("replication")
            if info["connected_slaves"] == 1 and info["slave0"]["state"] == "online":
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"the replica did not attach to the Redis on port {primary.port}")


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: run `make bench`, which installs it.")
    # As `make serve` starts it: AOF on, reached through its Unix socket.
    redis_servers = [RedisServer.start("--appendonly", "yes", unix_socket=True)]
    redis_server = redis_servers[0]
    servers: list[Server] = []

    def serve(target: Target, primary: RedisServer = redis_server, *replicas: RedisServer,
              **env: str) -> Server:
        pids = [primary.process.pid, *(replica.process.pid for replica in replicas)]
        servers.append(Server(target, primary.socket_url, pids, **env))
        return servers[-1]

    try:
        import redis

        redis_version = redis.Redis(port=redis_server.port).info()["redis_version"]
        results = {"machine": machine(redis_version), "changes": CHANGES}
        # REPLICA_ACKS=1 on a Redis of its own, with one replica: the other scenarios keep the
        # single Redis that `make serve` starts. It holds only sessions and login limits; the
        # users are in the database that all of ours share.
        redis_servers.append(RedisServer.start("--appendonly", "yes", unix_socket=True))
        acks_primary = redis_servers[-1]
        redis_servers.append(RedisServer.start("--replicaof", "127.0.0.1", str(acks_primary.port)))
        acks_replica = redis_servers[-1]
        wait_for_replica(acks_primary)
        scenarios = []
        for target in (OURS, PEER):
            prepare(target, redis_server.socket_url)
            fast, default = serve(target, BENCH_FAST_HASHER="1"), serve(target)
            if target is PEER:
                scenarios += scenarios_of(target, fast, default)
                continue
            scenarios += scenarios_of(
                target, fast, default,
                unchecked=serve(target, BENCH_FAST_HASHER="1", BENCH_SESSION_CHECK="0"),
                metrics_off=serve(target, BENCH_FAST_HASHER="1", DJANGO_METRICS="0"),
                replica_acks=serve(target, acks_primary, acks_replica, BENCH_FAST_HASHER="1",
                                   BENCH_REPLICA_ACKS="1"),
            )
        run_scenarios(scenarios)
        for target in (OURS, PEER):
            results[target.name] = {s.name: s.summary() for s in scenarios if s.target is target}
        for server in servers:
            server.stop()
        servers.clear()
        results["counts"] = {
            "ours": subprocess_json(OURS, redis_server.socket_url, "bench.counts"),
            "simplejwt": subprocess_json(PEER, redis_server.socket_url, "bench.counts"),
        }
        results["memory"] = subprocess_json(OURS, redis_server.socket_url, "bench.memory")
    finally:
        for server in servers:
            server.stop()
        for server in reversed(redis_servers):  # the replica before its primary
            server.stop()
        for target in (OURS, PEER):
            shutil.rmtree(target.directory, ignore_errors=True)
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    from bench.report import write_markdown

    write_markdown(results, ROOT / "bench" / "results.md")
    print("Wrote bench/results.md and bench/results.json")


if __name__ == "__main__":
    main()
