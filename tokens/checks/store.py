"""The token store's checks: a cache that cannot lose tokens silently, a Redis that keeps
them (deploy), and no pickle."""


import re

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Error, Info, Warning
from django.utils.module_loading import import_string
from django_redis.cache import RedisCache
from django_redis.serializers.pickle import PickleSerializer

from tokens import store
from tokens.conf import (
    token_settings,
)
from tokens.exceptions import StoreUnavailable


CACHE_HINT = (
    "Point TOKENS['CACHE_ALIAS'] at a django-redis cache, e.g. CACHES['default'] = "
    "{'BACKEND': 'django_redis.cache.RedisCache', 'LOCATION': 'redis://127.0.0.1:6379/0'}."
)


def check_token_cache(app_configs=None, **kwargs) -> list[Error]:
    """The token cache must exist and be a django-redis cache that raises on failure."""
    alias = token_settings.CACHE_ALIAS
    config = settings.CACHES.get(alias)
    if config is None:
        return [Error(f"The token cache alias {alias!r} is not in CACHES.", hint=CACHE_HINT,
                      id="tokens.E001")]
    backend = config.get("BACKEND", "")
    try:
        backend_class = import_string(backend)
    except ImportError:
        return [Error(f"The token cache {alias!r} backend {backend!r} cannot be imported.",
                      hint=CACHE_HINT, id="tokens.E018")]
    if issubclass(backend_class, LocMemCache):
        return [Error(
            f"The token cache {alias!r} is LocMemCache: each process would keep its own "
            "tokens, and a refresh served by another process or after a restart would fail.",
            hint=CACHE_HINT, id="tokens.E002")]
    if issubclass(backend_class, DummyCache):
        return [Error(
            f"The token cache {alias!r} is DummyCache: it stores nothing, so every refresh "
            "would fail.", hint=CACHE_HINT, id="tokens.E003")]
    if not issubclass(backend_class, RedisCache):
        return [Error(
            f"The token cache {alias!r} uses {backend!r}; the token store needs django-redis "
            "(atomic rotation runs as Redis scripts).", hint=CACHE_HINT, id="tokens.E005")]
    ignore = config.get("OPTIONS", {}).get(
        "IGNORE_EXCEPTIONS", getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False)
    )
    if ignore:
        return [Error(
            f"The token cache {alias!r} ignores Redis exceptions: an outage would silently "
            "lose sessions and answer 401 instead of 503.",
            hint="Remove IGNORE_EXCEPTIONS from the cache OPTIONS and "
                 "DJANGO_REDIS_IGNORE_EXCEPTIONS from settings (or use another alias for tokens).",
            id="tokens.E004")]
    return []



def check_token_redis(app_configs=None, **kwargs) -> list[Info | Warning]:
    """The Redis behind the token cache must be reachable, Redis >= 7, and neither evict
    tokens nor forget them on restart; under Sentinel, its primary should have replicas."""
    if check_token_cache():
        return []  # reported as errors already
    alias = token_settings.CACHE_ALIAS
    try:
        version = store.redis_version()
        if too_old := redis_version_warnings(version):
            return too_old  # CONFIG GET of several names, below, needs Redis 7
        config = store.redis_config()
        replication = _replica_messages() if _sentinels() or _replica_acks() else []
    except StoreUnavailable as exc:
        return [Warning(f"The token Redis (cache {alias!r}) is unreachable: {exc}",
                        hint="Start Redis or fix REDIS_URL (with Sentinel: REDIS_SENTINELS and "
                             "REDIS_SENTINEL_SERVICE); eviction and persistence could not be "
                             "verified.", id="tokens.W003")]
    if config is None:
        return [Warning(
            f"The token Redis (cache {alias!r}) refuses the CONFIG command, so eviction "
            "and persistence could not be verified.",
            hint="Check by hand (or in your provider's console) that maxmemory-policy is "
                 "noeviction and that AOF or RDB persistence is on.", id="tokens.W004")]
    warnings = []
    policy = config.get("maxmemory-policy", "")
    if policy != "noeviction":
        warnings.append(Warning(
            f"The token Redis evicts keys under memory pressure (maxmemory-policy {policy}): "
            "sessions would vanish and users be logged out. Tokens carry TTLs, so volatile-* "
            "policies evict them too.",
            hint="Set maxmemory-policy noeviction on a Redis that holds tokens.",
            id="tokens.W001"))
    if config.get("appendonly") != "yes" and not config.get("save", "").strip():
        warnings.append(Warning(
            "The token Redis has no persistence (appendonly no and no save points): a "
            "Redis restart logs everyone out.",
            hint="Turn on AOF (appendonly yes) or RDB save points.", id="tokens.W002"))
    return warnings + replication


def _sentinels() -> list:
    config = settings.CACHES.get(token_settings.CACHE_ALIAS, {})
    return config.get("OPTIONS", {}).get("SENTINELS") or []


def _replica_acks() -> int:
    acks = token_settings.REPLICA_ACKS
    return acks if type(acks) is int and acks > 0 else 0  # else tokens.E012


def _replica_messages() -> list[Info | Warning]:
    """Under Sentinel, or with REPLICA_ACKS: how many replicas the primary the store talks
    to has (the checks above read that primary too)."""
    replicas = store.redis_replicas()
    if replicas is None:
        return []  # INFO refused: judged on its settings alone, as above
    if replicas < _replica_acks():
        return [Warning(
            f"TOKENS['REPLICA_ACKS'] is {_replica_acks()} but the token Redis has {replicas} "
            "connected replica(s): every login, refresh and logout would answer 503.",
            hint="Lower REPLICA_ACKS to the replicas you run, or start more replicas.",
            id="tokens.W009")]
    if not _sentinels():
        return []
    if replicas == 0:
        return [Warning(
            "The token Redis primary under Sentinel has no connected replica: if it fails "
            "there is nothing to fail over to, and refreshes answer 503 until it is back.",
            hint="Start a replica (replicaof the primary) and check that the primary lists "
                 "it as connected (INFO replication).", id="tokens.W008")]
    return [Info(f"The token Redis primary under Sentinel has {replicas} connected "
                 f"replica{'s' if replicas > 1 else ''}.", id="tokens.I001")]


def redis_version_warnings(version: str) -> list[Warning]:
    """A warning if `version` (as INFO reports it, "7.0.15") is older than Redis 7; none if
    it is unknown."""
    major = re.match(r"\d+", version)
    if major is None or int(major.group()) >= 7:
        return []
    return [Warning(
        f"The token Redis is version {version}; the token service needs Redis 7 or later "
        "(the deploy check reads several CONFIG names at once, and only 7 is tested).",
        hint="Upgrade the token Redis to 7 or later.", id="tokens.W010")]


def check_token_serializer(app_configs=None, **kwargs) -> list[Warning]:
    """A pickle serializer lets whoever can write to Redis run code in the API."""
    config = settings.CACHES.get(token_settings.CACHE_ALIAS, {})
    path = config.get("OPTIONS", {}).get(
        "SERIALIZER", "django_redis.serializers.pickle.PickleSerializer")
    try:
        pickles = issubclass(import_string(path), PickleSerializer)
    except ImportError:
        return []
    if not pickles:
        return []
    return [Warning(
        f"The token cache {token_settings.CACHE_ALIAS!r} uses a pickle serializer: whoever "
        "can write to Redis could run code in the API.",
        hint="Set CACHES[alias]['OPTIONS']['SERIALIZER'] = "
             "'django_redis.serializers.json.JSONSerializer'.", id="tokens.W005")]
