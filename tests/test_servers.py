"""The processes the tests start land on ports of their own, even when another process
takes the port they were handed first."""

import socket

import pytest
import redis

from tests import servers
from tests.servers import RedisServer, refused_port


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
