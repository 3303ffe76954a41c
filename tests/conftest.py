"""Shared fixtures: a real redis-server per test session, API clients, users."""

import copy
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection
from model_bakery import baker
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server process on a loopback port, started and stopped by the tests."""

    port: int
    process: subprocess.Popen
    directory: Path
    args: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, *extra_args: str) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.exit("redis-server not found: run `make test`, which installs it.", returncode=2)
        directory = Path(tempfile.mkdtemp(prefix="tokens-redis-"))
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                "--save", "", "--appendonly", "no", *extra_args]
        server = cls(port, cls._spawn(args), directory, args)
        server.wait_until_ready()
        return server

    @staticmethod
    def _spawn(args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        """Stop the process abruptly (SIGKILL), keeping its data directory."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and data directory."""
        self.kill()
        self.process = self._spawn(self.args)
        self.wait_until_ready()

    def wait_until_ready(self, seconds: float = 10) -> None:
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test left it stopped
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def caches_at(location: str) -> dict:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = location
    return caches


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """Every test session gets its own redis-server; the token cache points at it."""
    server = RedisServer.start()
    override = override_settings(CACHES=caches_at(server.url))
    override.enable()
    try:
        yield server
    finally:
        override.disable()
        server.stop()


@pytest.fixture(autouse=True)
def _empty_redis(redis_server):
    # Our own server: flushing it between tests is safe (the app itself never flushes).
    redis.Redis(port=redis_server.port).flushdb()


@pytest.fixture
def redis_conn():
    """The token cache's own Redis connection, to look at what the app stored."""
    return get_redis_connection("default")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def make_user(db):
    def make(**fields):
        user = baker.make(settings.AUTH_USER_MODEL, **{"is_active": True, **fields})
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user(username="alice", email="alice@example.com")


@pytest.fixture
def login(api):
    """POST the credentials to the obtain endpoint; returns the token pair."""

    def do_login(user, **extra) -> dict:
        response = api.post(
            "/api/auth/token/", {"username": user.username, "password": PASSWORD},
            format="json", **extra,
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do_login
