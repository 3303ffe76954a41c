"""The processes the tests start land on ports of their own, even when another process
takes the port they were handed first; and gunicorn, however the tests, the benchmark or
`make serve` start it, shares no control socket with any other instance."""

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests import servers
from tests.servers import RedisServer, refused_port
from tests.system.conftest import ROOT, ApiServer, Project, wait_for

GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


@pytest.fixture
def first_port_taken(monkeypatch):
    """free_port() hands out `port` first (as if taken since), then really free ones."""

    def hand_out(port: int) -> None:
        ports = iter([port])
        monkeypatch.setattr(servers, "free_port", lambda: next(ports, None) or free())

    free = servers.free_port
    return hand_out


def own_pid(server: RedisServer) -> int:
    return redis.Redis(port=server.port).info("server")["process_id"]


def test_redis_server_moves_on_when_its_port_is_taken_by_another_program(first_port_taken):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        first_port_taken(taken)
        server = RedisServer.start()
    try:
        assert server.port != taken
        assert own_pid(server) == server.process.pid
    finally:
        server.stop()


def test_redis_server_is_never_mistaken_for_another_redis_on_its_port(redis_server,
                                                                      first_port_taken):
    first_port_taken(redis_server.port)
    server = RedisServer.start()
    try:
        assert server.port != redis_server.port
        assert own_pid(server) == server.process.pid
    finally:
        server.stop()
    assert own_pid(redis_server) == redis_server.process.pid  # the other one is untouched


def test_redis_server_gives_up_after_a_few_taken_ports(redis_server, monkeypatch):
    monkeypatch.setattr(servers, "free_port", lambda: redis_server.port)
    with pytest.raises(RuntimeError, match="no free port in 3 attempts"):
        RedisServer.start(attempts=3)


def test_a_refused_port_refuses_and_cannot_be_taken():
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", refused_port()))
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", refused_port()))


# --- gunicorn's control socket ---

@pytest.fixture
def user_dirs(tmp_path) -> dict[str, Path]:
    """A HOME and an XDG_RUNTIME_DIR of the test's own: where gunicorn 27 puts its control
    socket by default (`$XDG_RUNTIME_DIR/gunicorn.ctl`, else `~/.gunicorn/gunicorn.ctl`)."""
    dirs = {"HOME": tmp_path / "home", "XDG_RUNTIME_DIR": tmp_path / "run"}
    for directory in dirs.values():
        directory.mkdir()
    return dirs


def sockets(*directories: Path) -> list[Path]:
    return [path for directory in directories for path in directory.rglob("*")
            if path.is_socket()]


def api_env(redis_server, tmp_path, dirs: dict[str, Path], **extra) -> dict:
    """The environment the tests start gunicorn with, its user directories `dirs` only."""
    env = Project(tmp_path, redis_server).env(**extra)
    env.pop("XDG_RUNTIME_DIR", None)
    return {**env, **{name: str(directory) for name, directory in dirs.items()}}


@pytest.mark.parametrize("config_file", [None, GUNICORN_CONFIG], ids=["tests", "make serve"])
@pytest.mark.parametrize("runtime_dir", [True, False], ids=["XDG_RUNTIME_DIR", "HOME only"])
def test_gunicorn_opens_no_shared_control_socket(redis_server, tmp_path, user_dirs,
                                                 config_file, runtime_dir):
    # One path per user for every instance: two deployments, or a deployment and a test
    # run, replaced each other's socket (and `gunicornc` reached the wrong one).
    dirs = user_dirs if runtime_dir else {"HOME": user_dirs["HOME"]}
    server = ApiServer.start(api_env(redis_server, tmp_path, dirs), tmp_path, workers=1,
                             config_file=config_file)
    try:
        assert server.call("GET", "/api/auth/me/").status == 401  # it serves
        assert sockets(*user_dirs.values()) == []
    finally:
        server.stop()


def test_with_a_path_of_its_own_each_instance_has_its_own_control_socket(redis_server,
                                                                          tmp_path, user_dirs):
    paths = [tmp_path / "a.ctl", tmp_path / "b.ctl"]
    started = [ApiServer.start(api_env(redis_server, tmp_path, user_dirs,
                                       GUNICORN_CONTROL_SOCKET=str(path)),
                               tmp_path, workers=1, config_file=GUNICORN_CONFIG)
               for path in paths]
    try:
        wait_for(lambda: all(path.is_socket() for path in paths))
        assert sockets(*user_dirs.values()) == []
        for path, server in zip(paths, started):  # `gunicornc -s PATH` reaches that instance
            stats = subprocess.run([sys.executable, "-m", "gunicorn.ctl.cli", "-s", str(path),
                                    "-c", "show stats", "-j"], capture_output=True, text=True,
                                   check=True, timeout=30)
            assert json.loads(stats.stdout)["pid"] == server.process.pid
    finally:
        for server in started:
            server.stop()


def test_the_benchmarks_gunicorn_opens_no_shared_control_socket(redis_server, tmp_path,
                                                                user_dirs):
    from bench import run

    for made_on_import in (run.OURS, run.PEER):  # their directories; this test needs neither
        shutil.rmtree(made_on_import.directory, ignore_errors=True)
    target = dataclasses.replace(run.OURS, directory=tmp_path)
    server = run.Server(target, redis_server.url, [],
                        **{name: str(directory) for name, directory in user_dirs.items()})
    try:
        assert sockets(*user_dirs.values()) == []
    finally:
        server.stop()
