"""Processes the tests (and the benchmark) start on loopback ports and stop themselves."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A loopback port free now; another process may take it before it is bound, so whoever
    binds it must be ready to try another (see RedisServer.start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_refusing: socket.socket | None = None


def refused_port() -> int:
    """A loopback port where every connection is refused, for as long as the tests run: it
    is held by a socket that is bound but never listens, so no other process can take it."""
    global _refusing
    if _refusing is None:
        _refusing = socket.socket()
        _refusing.bind(("127.0.0.1", 0))
    return _refusing.getsockname()[1]


class PortTaken(RuntimeError):
    """Another process bound the port between free_port() and redis-server."""


@dataclass
class RedisServer:
    """A redis-server process on a loopback port, started and stopped by the tests."""

    port: int
    process: subprocess.Popen
    directory: Path
    args: list[str]
    ready: str = "Ready to accept connections"  # what its log says once it listens

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        """Its Unix socket (when started with `unix_socket=True`), the way `make run` and
        `make serve` reach the local Redis."""
        return f"unix://{self.directory / 'redis.sock'}?db=0"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    @classmethod
    def start(cls, *extra_args: str, attempts: int = 5, unix_socket: bool = False
              ) -> "RedisServer":
        def args(port: int, directory: Path) -> list[str]:
            socket = ["--unixsocket", str(directory / "redis.sock"), "--unixsocketperm", "700"]
            return ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                    "--save", "", "--appendonly", "no", *(socket if unix_socket else []),
                    *extra_args]

        return cls._start(args, attempts=attempts)

    @classmethod
    def start_sentinel(cls, service: str, primary_port: int, *, quorum: int,
                       down_after_ms: int = 1000, failover_timeout_ms: int = 3000
                       ) -> "RedisServer":
        """A Sentinel (`redis-server --sentinel`) monitoring the primary on `primary_port` as
        `service`, from a config file of its own (Sentinel rewrites it as things change)."""
        def args(port: int, directory: Path) -> list[str]:
            config = directory / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {service} 127.0.0.1 {primary_port} {quorum}\n"
                f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                f"sentinel failover-timeout {service} {failover_timeout_ms}\n")
            return [str(config), "--sentinel", "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", str(directory)]

        return cls._start(args, ready="+monitor master")

    @classmethod
    def _start(cls, arguments: Callable[[int, Path], list[str]], *, attempts: int = 5,
               ready: str = "Ready to accept connections") -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found")
        for _ in range(attempts):
            directory = Path(tempfile.mkdtemp(prefix="tokens-redis-"))
            port = free_port()
            args = [binary, *arguments(port, directory)]
            server = cls(port, cls._spawn(args, directory / "redis.log"), directory, args, ready)
            try:
                server.wait_until_ready()
                return server
            except PortTaken:
                continue
        raise RuntimeError(f"redis-server found no free port in {attempts} attempts")

    @staticmethod
    def _spawn(args: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """Stop the process abruptly (SIGKILL), keeping its data directory."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and data directory."""
        self.kill()
        self.process = self._spawn(self.args, self.log)
        self.wait_until_ready()

    def wait_until_ready(self, seconds: float = 10) -> None:
        """Wait until this process accepts connections, by its own log: a ping could be
        answered by another server that took the port first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            log = self.log.read_text(errors="replace")
            if self.process.poll() is not None:
                self.stop()
                if "Address already in use" in log:
                    raise PortTaken(f"port {self.port} was taken")
                raise RuntimeError(f"redis-server exited:\n{log[-2000:]}")
            if self.ready in log:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test left it stopped
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


POSTGRES_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"))


def postgres_binary(name: str) -> str:
    """A PostgreSQL 15 program (Debian's package: `make postgresql` installs it)."""
    for directory in POSTGRES_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    raise FileNotFoundError(f"PostgreSQL's {name} not found (apt-get install postgresql)")


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb in a temporary folder, a postmaster on a
    loopback port (its Unix socket in that folder too), trust authentication for the
    `postgres` role from this machine only. `stop` removes it all."""

    port: int
    directory: Path
    user: str = "postgres"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @classmethod
    def start(cls, attempts: int = 5) -> "PostgresServer":
        directory = Path(tempfile.mkdtemp(prefix="tokens-postgres-"))
        server = cls(0, directory)
        try:
            server._as_owner(postgres_binary("initdb"), "-D", str(server.data), "-U", server.user,
                             "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
            for _ in range(attempts):
                server.port = free_port()
                try:
                    server._as_owner(
                        postgres_binary("pg_ctl"), "-D", str(server.data), "-l", str(server.log),
                        "-w", "-t", "30", "start", "-o",
                        f"-p {server.port} -c listen_addresses=127.0.0.1 "
                        f"-k {directory} -c fsync=off -c full_page_writes=off")
                    return server
                except subprocess.CalledProcessError:
                    if "Address already in use" not in server.log.read_text(errors="replace"):
                        raise
            raise RuntimeError(f"postgres found no free port in {attempts} attempts")
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _as_owner(self, *args: str) -> None:
        """Run a server program as the cluster's owner: PostgreSQL refuses to run as root, so
        as root the folder goes to the `postgres` system user (Debian's package makes it)."""
        command = list(args)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def create_database(self, name: str) -> None:
        subprocess.run([postgres_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", self.user, name], check=True, capture_output=True, timeout=30)

    def stop(self) -> None:
        try:
            if self.port:
                self._as_owner(postgres_binary("pg_ctl"), "-D", str(self.data), "-m", "fast",
                               "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
