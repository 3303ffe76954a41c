"""Real processes on loopback: gunicorn API servers and redis-server, started and stopped here."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.helpers import (
    LOGOUT, LOGOUT_ALL, ME, NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, SESSIONS,
    claims_of, session_keys,
)
from tests.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TIMEOUT = 10  # seconds: a hung worker fails the test instead of hanging it


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict

    @property
    def code(self) -> str | None:
        return self.body.get("code")


def call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None,
         timeout: float = CLIENT_TIMEOUT, headers: dict | None = None) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers=headers or {})
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    return Reply(status, json.loads(raw) if raw else {}, headers)


@dataclass
class Project:
    """A database and a Redis shared by every API server of one test."""

    directory: Path
    redis: RedisServer
    servers: list = field(default_factory=list)
    base_env: dict = field(default_factory=dict)  # for every process of this project

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "tests.system.settings",
            "DJANGO_SECRET_KEY": "system-tests-only-secret-key-0123456789-abcdefghijklmnop",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{self.directory / 'db.sqlite3'}",
            "REDIS_URL": self.redis.url,
            **self.base_env,
            **extra,
        })
        return env

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(),
                       check=True, capture_output=True, timeout=120)

    def start_api(self, *, workers: int = 2, config_file: Path | None = None, **env
                  ) -> "ApiServer":
        server = ApiServer.start(self.env(**env), self.directory, workers=workers,
                                 config_file=config_file)
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ApiServer:
    """gunicorn with sync workers (2 unless told) on a free loopback port; with `config_file`,
    that gunicorn config (given the port and workers in its environment), and its access log
    in `log` too."""

    port: int
    process: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, env: dict, directory: Path, workers: int = 2, attempts: int = 3,
              config_file: Path | None = None) -> "ApiServer":
        for attempt in range(attempts):
            port = free_port()
            log = directory / f"gunicorn-{port}.log"
            if config_file:
                command = ["-c", str(config_file)]
                env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}",
                       "GUNICORN_WORKERS": str(workers)}
            else:
                # No control socket: by default one path per user, which every gunicorn on
                # the machine (a deployment, another test run) would take from the others.
                command = ["config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                           "--workers", str(workers), "--timeout", "30",
                           "--graceful-timeout", "5", "--no-control-socket"]
            output = log.open("w")
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *command], cwd=ROOT, env=env,
                stdout=output if config_file else subprocess.DEVNULL, stderr=output,
            )
            server = cls(port, process, log)
            try:
                server.wait_until_ready()
                return server
            except RuntimeError:
                # Another process took the port between free_port() and gunicorn's bind.
                if "Connection in use" not in log.read_text() or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def wait_until_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None or "Connection in use" in self.log.read_text():
                break
            try:
                if call(self.base, "GET", ME, timeout=2).status == 401:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-2000:]}")

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None,
             headers: dict | None = None):
        return call(self.base, method, path, body, token, headers=headers)

    def login(self, username: str = "alice") -> dict:
        reply = self.call("POST", OBTAIN, {"username": username, "password": PASSWORD})
        assert reply.status == 200, reply
        return reply.body

    def refresh(self, token: str) -> Reply:
        return self.call("POST", REFRESH, {"refresh_token": token})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_project(*redis_args: str, **env: str) -> Project:
    directory = Path(tempfile.mkdtemp(prefix="tokens-system-"))
    project = Project(directory, RedisServer.start(*redis_args), base_env=env)
    try:
        project.manage("migrate", "--noinput")
        project.manage("shell", "-c",
                       "from django.contrib.auth import get_user_model; "
                       f"get_user_model().objects.create_user('alice', password={PASSWORD!r})")
    except Exception:
        project.stop()
        raise
    return project


@pytest.fixture
def project():
    project = start_project("--appendonly", "yes", "--appendfsync", "always")
    yield project
    project.stop()


def wait_for(condition, seconds: float = 10) -> None:
    """Poll `condition` until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def session_count(conn: redis.Redis, token: str) -> int:
    """How many sessions the user of a token has in the store."""
    return len(session_keys(conn, claims_of(token)["sub"]))


def every_store_endpoint(api: ApiServer, pair: dict, *, parallel: bool = False) -> dict:
    """The (status, code) of one request to each endpoint that reaches the token store, made
    with alice's password and the tokens of `pair` (hers); those that end sessions last."""
    requests = store_requests(pair)
    with ThreadPoolExecutor(max_workers=len(requests) if parallel else 1) as pool:
        replies = pool.map(lambda args: api.call(*args), requests.values())
        # The sessions' list carries no code.
        return {name: (r.status, r.code if isinstance(r.body, dict) else None)
                for name, r in zip(requests, replies)}


def store_requests(pair: dict) -> dict:
    """(method, path, body, token) of one request to each endpoint that reaches the token
    store, by name, with alice's password and the tokens of `pair`; those that end sessions
    last."""
    refresh, access = pair["refresh_token"], pair["access_token"]
    return {
        "login": ("POST", OBTAIN, {"username": "alice", "password": PASSWORD}, None),
        "refresh": ("POST", REFRESH, {"refresh_token": refresh}, None),
        "me": ("GET", ME, None, access),
        "sessions": ("GET", SESSIONS, None, access),
        "password": ("POST", PASSWORD_URL,
                     {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, access),
        "end session": ("DELETE", f"{SESSIONS}{claims_of(refresh)['sid']}/", None, access),
        "logout": ("POST", LOGOUT, {"refresh_token": refresh}, None),
        "logout-all": ("POST", LOGOUT_ALL, None, access),
    }
