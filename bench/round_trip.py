"""`python bench/round_trip.py`: what one Redis round trip (the `HMGET` of the session check on
`me`) costs redis-py, through a Unix socket and through loopback TCP, to the same
redis-server. Best of 7 loops of 5,000 calls each; client CPU and wall time per call."""

import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import RedisServer  # noqa: E402

CALLS, LOOPS = 5000, 7


def per_call(client: redis.Redis) -> tuple[float, float]:
    client.hset("s", mapping={"gen": 1, "fp": "x" * 43, "fpx": ""})
    for _ in range(CALLS):
        client.hmget("s", "gen", "fp", "fpx")  # warm up
    cpu = wall = float("inf")
    for _ in range(LOOPS):
        started_cpu, started = time.process_time(), time.perf_counter()
        for _ in range(CALLS):
            client.hmget("s", "gen", "fp", "fpx")
        cpu = min(cpu, (time.process_time() - started_cpu) / CALLS)
        wall = min(wall, (time.perf_counter() - started) / CALLS)
    return cpu * 1e6, wall * 1e6


def main() -> None:
    server = RedisServer.start(unix_socket=True)
    try:
        clients = {"Unix socket": redis.Redis(unix_socket_path=str(server.directory / "redis.sock")),
                   "loopback TCP": redis.Redis(port=server.port)}
        for name, client in [*clients.items(), *clients.items()]:  # interleaved, twice
            cpu, wall = per_call(client)
            print(f"{name:13} {cpu:6.1f} us client CPU, {wall:6.1f} us wall per round trip "
                  f"(redis-py {redis.__version__})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
