"""What the deploy checks ask of the token Redis itself."""

from redis.exceptions import ResponseError

from tokens.store.connection import connection, text


def redis_version() -> str:
    """The token Redis's version as `INFO server` reports it; "" if INFO is refused."""
    with connection("probe") as (conn, key):
        try:
            info = conn.info("server")
        except ResponseError:
            return ""
    # str(): redis-py turns a value that reads as a number ("7.2") into one.
    return str(info.get("redis_version", ""))


def redis_replicas() -> int | None:
    """How many replicas are connected to the token Redis (under Sentinel, the primary), as
    `INFO replication` reports them; None if INFO is refused."""
    with connection("probe") as (conn, key):
        try:
            info = conn.info("replication")
        except ResponseError:
            return None
    return int(info.get("connected_slaves", 0))


def redis_config() -> dict[str, str] | None:
    """The token Redis's eviction and persistence settings; None if CONFIG is refused."""
    with connection("probe") as (conn, key):
        try:
            config = conn.config_get("maxmemory-policy", "appendonly", "save")
        except ResponseError:
            return None  # managed Redis often disables or renames CONFIG
    return {text(name): text(value) for name, value in config.items()}
