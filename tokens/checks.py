"""System checks: refuse a token store that would lose tokens silently, and bad TOKENS settings."""

import ipaddress
import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Error, Info, Tags, Warning, register
from django.http.request import validate_host
from django.utils.module_loading import import_string
from django_redis.cache import RedisCache
from django_redis.serializers.pickle import PickleSerializer

from tokens import store
from tokens.conf import (
    ALGORITHMS,
    ASYMMETRIC_ALGORITHMS,
    DURATIONS,
    RATES,
    MIN_KEY_BYTES,
    parse_rate,
    token_settings,
)
from tokens.exceptions import KeysMisconfigured, StoreUnavailable
from tokens.keys import fallback_keys, load_key, public_pem
from tokens.password_reset import EmailBackendKind, email_backend_kind, reset_url_problem

CACHE_HINT = (
    "Point TOKENS['CACHE_ALIAS'] at a django-redis cache, e.g. CACHES['default'] = "
    "{'BACKEND': 'django_redis.cache.RedisCache', 'LOCATION': 'redis://127.0.0.1:6379/0'}."
)


@register(Tags.caches)
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
                      hint=CACHE_HINT, id="tokens.E005")]
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


MINIMUM_DURATIONS = {"ROTATION_LEEWAY": timedelta(0), "RETRY_WINDOW": timedelta(0),
                     "REPLICA_ACK_TIMEOUT": timedelta(milliseconds=1)}


@register()
def check_token_settings(app_configs=None, **kwargs) -> list[Error]:
    """TOKENS must name known keys with values of the right kind."""
    errors = []
    unknown = token_settings.unknown_keys()
    if unknown:
        errors.append(Error(f"Unknown TOKENS settings: {', '.join(unknown)}.",
                            hint="See the configuration table in README.md.", id="tokens.E006"))
    for name in DURATIONS:
        value = getattr(token_settings, name)
        minimum = MINIMUM_DURATIONS.get(name, timedelta(seconds=1))
        if not isinstance(value, timedelta) or value < minimum:
            errors.append(Error(f"TOKENS[{name!r}] must be a timedelta of at least {minimum}.",
                                id="tokens.E007"))
    algorithm = token_settings.ALGORITHM
    if algorithm not in ALGORITHMS:
        errors.append(Error(
            f"TOKENS['ALGORITHM'] is {algorithm!r}.",
            hint=f"Use one of {', '.join(ALGORITHMS)} (deterministic signatures).",
            id="tokens.E008"))
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        errors += _asymmetric_key_errors(algorithm)
    else:
        errors += _hmac_key_errors(algorithm)
    acks = token_settings.REPLICA_ACKS
    if type(acks) is not int or acks < 0:
        errors.append(Error("TOKENS['REPLICA_ACKS'] must be a whole number of replicas (0: "
                            "do not wait for replicas).", id="tokens.E012"))
    elif acks and not _waits_within_socket_timeout():
        errors.append(Error(
            "TOKENS['REPLICA_ACK_TIMEOUT'] is not shorter than the token cache's "
            "SOCKET_TIMEOUT: a write waiting for its replicas would time out as an outage.",
            hint="Keep REPLICA_ACK_TIMEOUT well below SOCKET_TIMEOUT (e.g. 250 ms and 0.5 s).",
            id="tokens.E013"))
    for name in RATES:
        try:
            rate = parse_rate(getattr(token_settings, name))
            if rate and rate[0] < 1:
                raise ValueError("a limit below 1 refuses every login")
        except (ValueError, KeyError, IndexError, AttributeError):
            errors.append(Error(f"TOKENS[{name!r}] is not a rate like '5/m'.",
                                hint="Use 'N/s', 'N/m', 'N/h' or 'N/d', or None for no limit.",
                                id="tokens.E011"))
    errors += _metrics_errors()
    return errors


# A bearer secret shorter than this could be guessed from the network.
MIN_METRICS_TOKEN_CHARS = 32


def _metrics_errors() -> list[Error]:
    errors = []
    for entry in token_settings.METRICS_ALLOWED_IPS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (ValueError, TypeError):
            errors.append(Error(f"TOKENS['METRICS_ALLOWED_IPS'] holds {entry!r}, which is no "
                                "address or network.", hint="Use '10.0.0.5' or '10.0.0.0/24'.",
                                id="tokens.E014"))
    secret = token_settings.METRICS_BEARER_TOKEN
    if secret is not None and (not isinstance(secret, str)
                               or len(secret) < MIN_METRICS_TOKEN_CHARS):
        errors.append(Error(
            f"TOKENS['METRICS_BEARER_TOKEN'] must be a string of at least "
            f"{MIN_METRICS_TOKEN_CHARS} characters.",
            hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
            id="tokens.E015"))
    return errors


def _waits_within_socket_timeout() -> bool:
    config = settings.CACHES.get(token_settings.CACHE_ALIAS, {})
    socket_timeout = config.get("OPTIONS", {}).get("SOCKET_TIMEOUT")
    wait = token_settings.REPLICA_ACK_TIMEOUT
    return (socket_timeout is None or not isinstance(wait, timedelta)
            or wait.total_seconds() < float(socket_timeout))


KEY_HINT = ("SIGNING_KEY is the private key (PEM), VERIFYING_KEY its public key "
            "(`openssl pkey -in private.pem -pubout`), VERIFYING_KEY_FALLBACKS the public "
            "keys of retired private keys.")
FALLBACKS_HINT = "A list of keys, e.g. [old_key], even for one key."


def _asymmetric_key_errors(algorithm: str) -> list[Error]:
    """Both keys given (PEM), each of its kind and a pair, and the fallbacks public keys."""
    user_settings = getattr(settings, "TOKENS", None) or {}
    errors, loaded = [], {}
    for name, private in (("SIGNING_KEY", True), ("VERIFYING_KEY", False)):
        value = getattr(token_settings, name)
        if not user_settings.get(name) or not isinstance(value, (str, bytes)):
            errors.append(Error(f"TOKENS['ALGORITHM'] is {algorithm}, so TOKENS[{name!r}] must "
                                f"be the {'private' if private else 'public'} key (PEM).",
                                hint=KEY_HINT, id="tokens.E010"))
            continue
        try:
            pem = value.encode() if isinstance(value, str) else value
            loaded[name] = load_key(algorithm, pem, private=private)
        except ValueError as exc:
            errors.append(Error(f"TOKENS[{name!r}] {exc}.", hint=KEY_HINT, id="tokens.E010"))
    if len(loaded) == 2 and public_pem(loaded["SIGNING_KEY"]) != public_pem(
            loaded["VERIFYING_KEY"]):
        errors.append(Error(
            "TOKENS['VERIFYING_KEY'] is not the public key of TOKENS['SIGNING_KEY']: no token "
            "signed would verify.", hint=KEY_HINT, id="tokens.E016"))
    errors += _fallback_errors("VERIFYING_KEY_FALLBACKS")
    for i, pem in enumerate(_fallbacks("VERIFYING_KEY_FALLBACKS")):
        try:
            load_key(algorithm, pem, private=False)
        except ValueError as exc:
            errors.append(Error(f"TOKENS['VERIFYING_KEY_FALLBACKS'][{i}] {exc}.",
                                hint=KEY_HINT, id="tokens.E010"))
    return errors


def _fallback_errors(name: str) -> list[Error]:
    try:
        fallback_keys(name)
    except KeysMisconfigured as exc:
        return [Error(exc.reason, hint=FALLBACKS_HINT, id="tokens.E017")]
    return []


def _fallbacks(name: str) -> tuple[bytes, ...]:
    try:
        return fallback_keys(name)
    except KeysMisconfigured:
        return ()  # tokens.E017


def _hmac_key_errors(algorithm: str) -> list[Error]:
    """The explicit key and its fallbacks long enough for `algorithm`."""
    minimum = MIN_KEY_BYTES[algorithm]
    explicit = (getattr(settings, "TOKENS", None) or {}).get("SIGNING_KEY") is not None
    keys = [("TOKENS['SIGNING_KEY']", token_settings.SIGNING_KEY)]
    errors = _fallback_errors("SIGNING_KEY_FALLBACKS") if explicit else []
    if explicit:
        keys += [(f"TOKENS['SIGNING_KEY_FALLBACKS'][{i}]", key)
                 for i, key in enumerate(_fallbacks("SIGNING_KEY_FALLBACKS"))]
    for label, key in keys:
        if len(key) < minimum:
            errors.append(Error(
                f"{label} is shorter than {minimum} bytes, the minimum for {algorithm}.",
                hint="Use a longer random key, or leave SIGNING_KEY unset to derive one from "
                     "SECRET_KEY.", id="tokens.E009"))
    return errors


@register(Tags.caches, deploy=True)
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
        hint="Upgrade the token Redis to 7 or later.", id="tokens.W003")]


@register(Tags.caches, Tags.security, deploy=True)
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


# More fallbacks than this and the list has likely outlived its rotations.
MAX_FALLBACK_KEYS = 3


@register(Tags.security)
def check_signing_keys(app_configs=None, **kwargs) -> list[Warning]:
    """Fallback keys: none equal to the current key or to each other, and not too many."""
    if check_token_settings():
        return []  # reported as errors already
    from tokens.keys import keyset

    keys = keyset()
    secrets_ = list(keys.fingerprint_secrets)
    duplicated = len(set(secrets_)) < len(secrets_)
    if keys.algorithm in ASYMMETRIC_ALGORITHMS:
        fallbacks = len(token_settings.VERIFYING_KEY_FALLBACKS)
        duplicated = duplicated or len(keys.verifying_keys) < 1 + fallbacks
    else:
        fallbacks = len(keys.verifying_keys) - 1
        duplicated = duplicated or len(keys.verifying_keys) < len(secrets_)
    warnings = []
    if duplicated:
        warnings.append(Warning(
            "A fallback signing key is the current key, or listed twice.",
            hint="Remove the duplicate from SECRET_KEY_FALLBACKS (or TOKENS' *_FALLBACKS).",
            id="tokens.W006"))
    if fallbacks > MAX_FALLBACK_KEYS:
        warnings.append(Warning(
            f"{fallbacks} fallback signing keys: each still verifies tokens.",
            hint="Remove those retired longer ago than REFRESH_TOKEN_LIFETIME; "
                 "`manage.py signing_keys` shows which still stamp live sessions.",
            id="tokens.W007"))
    return warnings


RESET_URL_HINT = ("Set TOKENS['PASSWORD_RESET_URL'] (DJANGO_PASSWORD_RESET_URL) to your frontend's "
                  "reset page, uid and token in the fragment: "
                  "'https://app.example.com/reset#{uid}/{token}'.")


@register(Tags.security)
def check_password_reset(app_configs=None, **kwargs) -> list[Error | Warning]:
    """Reset links come from an absolute configured URL, and go by email, never to a log."""
    return _reset_url_messages() + _email_backend_messages()


def _reset_url_messages() -> list[Error | Warning]:
    url = token_settings.PASSWORD_RESET_URL
    problem = reset_url_problem(url)
    if not url:
        return [Warning(f"{problem}: password reset requests are answered, but no email is "
                        "sent.", hint=RESET_URL_HINT, id="tokens.W021")]
    if problem:
        return [Error(f"{problem}: no reset email can be sent (a link is never built on the "
                      "requesting Host).", hint=RESET_URL_HINT, id="tokens.E020")]
    if _token_reaches_this_service(url):
        return [Warning(
            "TOKENS['PASSWORD_RESET_URL'] points at a host in ALLOWED_HOSTS with the token "
            "outside the fragment: opening the link would put the token in this service's "
            "access log.", hint=RESET_URL_HINT, id="tokens.W022")]
    return []


def _email_backend_messages() -> list[Error | Warning]:
    kind = email_backend_kind()
    if kind in (EmailBackendKind.WRITES, EmailBackendKind.MEMORY) and not settings.DEBUG:
        return [Error(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND} with DEBUG off: every password reset "
            "link would be written to the console, a file or the process's memory, where "
            "whoever reads it can reset the account.",
            hint="Use an SMTP backend (DJANGO_EMAIL_HOST), or the dummy backend to send none.",
            id="tokens.E021")]
    if kind is EmailBackendKind.NOTHING:
        return [Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: password reset requests are "
            "answered, but no email is sent.",
            hint="Set DJANGO_EMAIL_HOST (and _PORT, _HOST_USER, _HOST_PASSWORD) for SMTP.",
            id="tokens.W020")]
    return []


def _token_reaches_this_service(url: str) -> bool:
    marker = "reset-token-marker"
    parts = urlsplit(url.format(uid="uid", token=marker))
    return marker not in parts.fragment and validate_host(parts.hostname or "",
                                                          settings.ALLOWED_HOSTS)
