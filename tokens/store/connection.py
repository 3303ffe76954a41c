"""The token cache, resolved per call, and its Redis connection: the one way in to Redis."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

from django.core.cache import InvalidCacheBackendError, caches
from django_redis.cache import RedisCache
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError

from tokens import metrics
from tokens.conf import token_settings
from tokens.exceptions import StoreMisconfigured, StoreUnavailable
from tokens.store.keys import KeyFunc

logger = logging.getLogger("tokens.store")

T = TypeVar("T")


@dataclass(frozen=True)
class Written(Generic[T]):
    """What a write returned, and whether the replicas TOKENS["REPLICA_ACKS"] asks for hold
    it (always, without). A write they do not hold yet stands on the primary: the service
    finishes what follows it, then answers 503 (services.common.acknowledged), and the
    client's retry finds it, as after a lost reply (see lua/rotate.lua)."""

    result: T
    acknowledged: bool = True


# The store call under way in this thread or task: a write whose replicas lag marks it, so
# its metrics count it among the store's failures, as a 503 it becomes.
_lagging: ContextVar[list[bool] | None] = ContextVar("tokens_store_lagging", default=None)


@contextmanager
def connection(operation: str) -> Iterator[tuple[Redis, KeyFunc]]:
    """The token cache's own Redis client and key function; Redis failures become 503s.
    `operation` (one of metrics.STORE_OPERATIONS) names the call in the metrics: its time,
    and its failures (a Redis error, a refused cache, replicas behind: each one a 503)."""
    started, failed, lagging = time.perf_counter(), False, []
    token = _lagging.set(lagging)
    try:
        cache = _cache()
        yield cache.client.get_client(write=True), cache.make_key
    except RedisError as exc:
        failed = True
        logger.error("Token store unavailable: %s: %s", type(exc).__name__, exc)
        raise StoreUnavailable() from exc
    except StoreMisconfigured:
        failed = True
        raise
    finally:
        _lagging.reset(token)
        metrics.store_call(operation, time.perf_counter() - started, failed or bool(lagging))


def write(script: Script, conn: Redis, *, keys: list[str], args: list,
          result: Callable[[Any], T] = lambda reply: reply) -> Written[T]:
    """`result` of the reply of a script that writes; with TOKENS["REPLICA_ACKS"], waited
    for (WAIT, on the same connection, so it counts this write) until that many replicas
    hold it, or REPLICA_ACK_TIMEOUT."""
    acks = token_settings.REPLICA_ACKS
    if not acks:
        return Written(result(script(keys=keys, args=args, client=conn)))
    timeout_ms = max(int(token_settings.REPLICA_ACK_TIMEOUT.total_seconds() * 1000), 1)
    try:
        reply, acked = _evalsha_then_wait(conn, script, keys, args, acks, timeout_ms)
    except NoScriptError:  # a new or flushed Redis: load it and run again (it did not run)
        conn.script_load(script.script)
        reply, acked = _evalsha_then_wait(conn, script, keys, args, acks, timeout_ms)
    if acked < acks:
        logger.error("Token store: %d of %d replicas acknowledged a write within %d ms.",
                     acked, acks, timeout_ms)
        if (lagging := _lagging.get()) is not None:
            lagging.append(True)
        return Written(result(reply), acknowledged=False)
    return Written(result(reply))


def _evalsha_then_wait(conn, script, keys, args, acks, timeout_ms) -> list:
    # EVALSHA itself, not the Script on a pipeline: that would first ask SCRIPT EXISTS, one
    # more round trip on every write.
    pipe = conn.pipeline(transaction=False)
    pipe.evalsha(script.sha, len(keys), *keys, *args)
    pipe.wait(acks, timeout_ms)
    return pipe.execute()


def text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _cache() -> RedisCache:
    """The configured token cache, refused at runtime if it could lose tokens silently."""
    alias = token_settings.CACHE_ALIAS
    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        _refuse(f"Token cache alias {alias!r} is not in CACHES.")
    if not isinstance(cache, RedisCache):
        _refuse(
            f"Token cache {alias!r} is {type(cache).__name__}, not django-redis: refusing to "
            "store sessions where other processes cannot see them."
        )
    if cache._ignore_exceptions:
        _refuse(
            f"Token cache {alias!r} has IGNORE_EXCEPTIONS on: refusing to store sessions "
            "where a Redis failure would be silently ignored."
        )
    return cache


def _refuse(message: str) -> NoReturn:
    logger.error("Token store misconfigured: %s", message)
    raise StoreMisconfigured(message)
