"""System checks, one module per concern, registered by TokensConfig.ready() (register).

Each problem has an id of its own, so SILENCED_SYSTEM_CHECKS can tell them apart:

- `store`: tokens.E001 (no such cache alias), E002 (LocMemCache), E003 (DummyCache), E004
  (IGNORE_EXCEPTIONS), E005 (not django-redis), E018 (a backend that does not import);
  deploy: W001 (evicting), W002 (no persistence), W003 (unreachable), W004 (CONFIG
  refused), W010 (older than Redis 7), W008/I001 (Sentinel replicas), W009 (fewer replicas
  than REPLICA_ACKS), W005 (pickle serializer).
- `settings`: E006 (unknown names), E007 (durations), E008 (algorithm), E011 (rates), E012
  (REPLICA_ACKS), E013 (REPLICA_ACK_TIMEOUT), E014/E015 (metrics access).
- `keys`: E009 (a short HMAC SIGNING_KEY), E023 (a short HMAC fallback), E010 (an asymmetric
  key missing), E019 (a SIGNING_KEY or VERIFYING_KEY of the wrong kind, or unloadable), E022
  (a VERIFYING_KEY_FALLBACKS entry that is no public key), E016 (not a pair), E017
  (fallbacks not a list), W006 (duplicated fallback), W007 (too many fallbacks).
- `reset`: E020 (no absolute reset link), E021 (a backend that keeps the link), W020-W022.
"""

from django.core.checks import Tags, register

from tokens.checks.keys import check_signing_keys
from tokens.checks.reset import check_password_reset
from tokens.checks.settings import check_token_settings
from tokens.checks.store import (check_token_cache, check_token_redis, check_token_serializer,
                                 redis_version_warnings)

__all__ = ["check_password_reset", "check_signing_keys", "check_token_cache",
           "check_token_redis", "check_token_serializer", "check_token_settings",
           "redis_version_warnings", "register_checks"]


def register_checks() -> None:
    """Register every check with Django's registry (once: TokensConfig.ready())."""
    register(check_token_cache, Tags.caches)
    register(check_token_settings)
    register(check_signing_keys, Tags.security)
    register(check_password_reset, Tags.security)
    register(check_token_redis, Tags.caches, deploy=True)
    register(check_token_serializer, Tags.caches, Tags.security, deploy=True)
