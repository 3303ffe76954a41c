"""Processes the tests (and the benchmark) start on loopback ports and stop themselves."""

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis


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
            raise FileNotFoundError("redis-server not found")
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
