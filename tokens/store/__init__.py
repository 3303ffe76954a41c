"""The session store: the only code that touches the token cache.

Keys are built by the token cache's own key function (`keys`) and reached through that
cache's own connection, the cache that TOKENS["CACHE_ALIAS"] names, resolved per call
(`connection`). The rules that must hold under races are Lua scripts, one file each in `lua/`.

Redis never holds a usable token: only token ids (`jti`), the password fingerprint
(an HMAC of the password hash, useless to log in with) and metadata.

Every write sets a TTL equal to what it protects: a session key lives until its newest
refresh token expires, the user's index until that user's longest-lived session does.

- `sessions`: create, rotate, check, restart and end sessions; list them.
- `login_limits`: the budgets of the login limits.
- `maintenance`: purge what TTLs cannot, and scans for reports.
- `probes`: what the deploy checks ask of Redis.
"""

from tokens.store.budgets import (
                                       Budget,
                                       Refusal,
                                       first_lockout,
                                       record_login_failure,
                                       release_login_attempt,
                                       reserve_login_attempt,
)
from tokens.store.connection import Written
from tokens.store.keys import KEY_PREFIX
from tokens.store.maintenance import PurgeReport, purge, purge_all, session_fingerprints
from tokens.store.probes import redis_config, redis_replicas, redis_version
from tokens.store.sessions import (
                                       REHASHES_KEPT,
                                       SESSIONS_PER_SCRIPT,
                                       Rotation,
                                       Session,
                                       abandon_session,
                                       add_fingerprint,
                                       create_session,
                                       end_sessions,
                                       is_active,
                                       is_change_retry,
                                       list_sessions,
                                       logout,
                                       restart,
                                       revoke,
                                       revoke_all,
                                       rotate,
)

__all__ = [
    "KEY_PREFIX", "REHASHES_KEPT", "SESSIONS_PER_SCRIPT", "Budget", "PurgeReport", "Refusal",
    "Rotation", "Session", "abandon_session", "add_fingerprint", "create_session",
    "end_sessions", "first_lockout", "is_active", "is_change_retry",
    "list_sessions", "logout", "purge", "purge_all", "record_login_failure", "redis_config",
    "redis_replicas", "redis_version", "release_login_attempt", "reserve_login_attempt",
    "restart", "revoke", "revoke_all", "rotate", "session_fingerprints", "Written",
]
