"""The token cache, resolved per call, and its Redis connection: the one way in to Redis."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from django.core.cache import InvalidCacheBackendError, caches
from django_redis.cache import RedisCache
from redis import Redis
from redis.exceptions import RedisError

from tokens.conf import token_settings
from tokens.exceptions import StoreMisconfigured, StoreUnavailable
from tokens.store.keys import KeyFunc

logger = logging.getLogger("tokens.store")


@contextmanager
def connection() -> Iterator[tuple[Redis, KeyFunc]]:
    """The token cache's own Redis client and key function; Redis failures become 503s."""
    cache = _cache()
    try:
        yield cache.client.get_client(write=True), cache.make_key
    except RedisError as exc:
        logger.error("Token store unavailable: %s: %s", type(exc).__name__, exc)
        raise StoreUnavailable() from exc


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
