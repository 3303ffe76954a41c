"""`token_settings`: the TOKENS dict from Django settings merged over DEFAULTS, read on access.

Nothing is captured at import time, so `override_settings(TOKENS=...)` takes effect at once.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

DEFAULTS: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "SESSION_MAX_LIFETIME": timedelta(days=90),
    "ROTATION_LEEWAY": timedelta(seconds=10),
    "CACHE_ALIAS": "default",
    "SIGNING_KEY": None,  # None: derived from SECRET_KEY
    "ALGORITHM": "HS256",
    "ISSUER": "django-token-service",
    "AUDIENCE": "django-token-service-api",
    "CHECK_SESSION_ON_ACCESS": True,
}

DURATIONS = (
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "SESSION_MAX_LIFETIME",
    "ROTATION_LEEWAY",
)

# Only HMAC algorithms: their signatures are deterministic, which lets a replay inside
# the rotation leeway be answered with the very same successor token without storing it.
ALGORITHMS = ("HS256", "HS384", "HS512")

# RFC 7518 3.2: an HMAC key at least as long as the hash output.
MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class TokenSettings:
    """Attribute access to the merged TOKENS settings; unknown names raise AttributeError."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid TOKENS setting: {name!r}")
        user_settings = getattr(settings, "TOKENS", None) or {}
        value = user_settings.get(name, DEFAULTS[name])
        if name == "SIGNING_KEY":
            return _key_bytes(value)
        return value

    def unknown_keys(self) -> list[str]:
        user_settings = getattr(settings, "TOKENS", None) or {}
        return sorted(set(user_settings) - set(DEFAULTS))


def _key_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        # A key of its own (64 bytes, enough for HS512), so it is not SECRET_KEY itself.
        return salted_hmac("tokens.signing-key", "", algorithm="sha512").digest()
    return value.encode() if isinstance(value, str) else value


token_settings = TokenSettings()
