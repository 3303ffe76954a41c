"""`token_settings`: the TOKENS dict from Django settings merged over DEFAULTS, read on access.

Nothing is captured at import time, so `override_settings(TOKENS=...)` takes effect at once.
"""

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

DEFAULTS: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "SESSION_MAX_LIFETIME": timedelta(days=90),
    "ROTATION_LEEWAY": timedelta(seconds=10),
    # How long a refresh retried with its Idempotency-Key (after a lost reply) still gets the
    # successor the store recorded: the longest outage it covers, and the longest a thief who
    # learnt a spent token and its key could use them.
    "RETRY_WINDOW": timedelta(minutes=15),
    "CACHE_ALIAS": "default",
    # Replicas that must hold a write (login, rotation, revocation) before it is answered:
    # the store waits (Redis WAIT, on the write's own connection) up to REPLICA_ACK_TIMEOUT
    # (shorter than the cache's SOCKET_TIMEOUT), and answers 503 with fewer; the client's retry then finds the write (see README).
    "REPLICA_ACKS": 0,
    "REPLICA_ACK_TIMEOUT": timedelta(milliseconds=250),
    "SIGNING_KEY": None,  # None: derived from SECRET_KEY (HMAC algorithms only)
    "VERIFYING_KEY": None,  # the public key (PEM), for RS* and EdDSA
    # Retired keys that still verify (see tokens.signing_keys): HMAC keys, when SIGNING_KEY is given
    # (keys derived from SECRET_KEY follow SECRET_KEY_FALLBACKS instead), and public keys.
    "SIGNING_KEY_FALLBACKS": (),
    "VERIFYING_KEY_FALLBACKS": (),
    "ALGORITHM": "HS256",
    "ISSUER": "django-token-service",
    "AUDIENCE": "django-token-service-api",
    "CHECK_SESSION_ON_ACCESS": True,
    # Failed password checks allowed ("N/s|m|h|d"; None: no limit), counted per username and
    # per client address for clients without a device cookie for that username, and per
    # device for those with one (see tokens.services.login_limits).
    "LOGIN_FAILURES_PER_USERNAME": "5/m",
    "LOGIN_FAILURES_PER_IP": "20/m",
    "LOGIN_FAILURES_PER_DEVICE": "5/m",
    # How long a device cookie (proof of an earlier successful login) is honoured.
    "DEVICE_COOKIE_AGE": timedelta(days=365),
    # Password reset requests allowed per email address (every spelling of it) and per
    # client address; each request counts, whether or not an account matches.
    "PASSWORD_RESETS_PER_EMAIL": "3/h",
    "PASSWORD_RESETS_PER_IP": "20/h",
    # The link a reset email carries: the frontend's page, an absolute http(s) URL with
    # {uid} and {token}, best in its fragment ("https://app.example.com/reset#{uid}/{token}"),
    # which browsers send to no server. Never joined to the request's Host. None: no reset
    # email is sent (tokens.W021).
    "PASSWORD_RESET_URL": None,
    # The browser client's demo page at /demo/ (always on with DEBUG).
    "DEMO_PAGE": False,
    # How long security events (reuse, lockouts, revocations...) are kept in the database;
    # `manage.py purge_security_events` deletes older ones.
    "SECURITY_EVENT_RETENTION": timedelta(days=90),
    # Prometheus metrics: counted unless off; served at /metrics only to clients from these
    # addresses or networks, or presenting this secret as a Bearer token (neither: a 404).
    "METRICS": True,
    "METRICS_ALLOWED_IPS": (),
    "METRICS_BEARER_TOKEN": None,
}

DURATIONS = (
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "SESSION_MAX_LIFETIME",
    "ROTATION_LEEWAY",
    "RETRY_WINDOW",
    "DEVICE_COOKIE_AGE",
    "REPLICA_ACK_TIMEOUT",
    "SECURITY_EVENT_RETENTION",
)

RATES = ("LOGIN_FAILURES_PER_USERNAME", "LOGIN_FAILURES_PER_IP", "LOGIN_FAILURES_PER_DEVICE",
         "PASSWORD_RESETS_PER_EMAIL", "PASSWORD_RESETS_PER_IP")

# Only algorithms with deterministic signatures (HMAC, RSA PKCS#1 v1.5, Ed25519): a replay
# inside the rotation leeway is answered with the very same successor token, re-signed
# from its stored claims rather than stored itself. ECDSA and RSA-PSS are randomised.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "EdDSA")
ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS

# RFC 7518 3.2: an HMAC key at least as long as the hash output.
MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class TokenSettings:
    """Attribute access to the merged TOKENS settings; unknown names raise AttributeError."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid TOKENS setting: {name!r}")
        user_settings = getattr(settings, "TOKENS", None) or {}
        value = user_settings.get(name, DEFAULTS[name])
        if name in ("SIGNING_KEY", "VERIFYING_KEY"):
            return _key_bytes(value, derive=name == "SIGNING_KEY")
        return value

    @property
    def verifying_key(self) -> bytes:
        """The key that checks signatures: the public key, or the HMAC secret itself."""
        if self.ALGORITHM in ASYMMETRIC_ALGORITHMS:
            return self.VERIFYING_KEY
        return self.SIGNING_KEY

    def unknown_keys(self) -> list[str]:
        user_settings = getattr(settings, "TOKENS", None) or {}
        return sorted(set(user_settings) - set(DEFAULTS))


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'5/m' -> (5, 60): DRF's rate format; None means no limit."""
    if rate is None:
        return None
    count, period = rate.split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _key_bytes(value: str | bytes | None, derive: bool) -> bytes:
    if value is None:
        if not derive:
            return b""
        return derived_key(settings.SECRET_KEY)
    return value.encode() if isinstance(value, str) else value


@functools.lru_cache(maxsize=8)
def derived_key(secret_key: str) -> bytes:
    """The HMAC signing key derived from a SECRET_KEY (or one of its fallbacks)."""
    # A key of its own (64 bytes, enough for HS512), so it is not SECRET_KEY itself.
    # Cached by SECRET_KEY: read on every request, and a change of key is a new entry.
    return salted_hmac("tokens.signing-key", "", secret=secret_key, algorithm="sha512").digest()


token_settings = TokenSettings()
