"""Signing keys: the current one and its fallbacks, each named by a key id (`kid`).

New tokens are signed with the current key; tokens signed with a fallback still verify, so
that a key can be rotated without logging anyone out (README, "Rotating keys"):
- HMAC keys derived from SECRET_KEY follow Django's SECRET_KEY_FALLBACKS;
- an explicit TOKENS["SIGNING_KEY"] has TOKENS["SIGNING_KEY_FALLBACKS"];
- asymmetric keys have TOKENS["VERIFYING_KEY_FALLBACKS"] (public keys of retired keys).

A `kid` names a key without revealing it: the RFC 7638 thumbprint of a public key, or a
one-way hash of an HMAC key. The same module gives the secrets of the sessions' password
fingerprints (current first), which rotate with SECRET_KEY, never with an asymmetric key.
"""

import base64
import functools
import hashlib
import json
from dataclasses import dataclass

import jwt
from django.conf import settings

from tokens.conf import ASYMMETRIC_ALGORITHMS, derived_key, token_settings


@dataclass(frozen=True)
class KeySet:
    algorithm: str
    signing_key: bytes
    current_kid: str
    verifying_keys: dict[str, bytes]  # kid -> key, the current one first
    public_jwks: tuple[dict, ...]  # asymmetric only: what /api/auth/jwks/ publishes
    fingerprint_secrets: tuple[bytes, ...]  # the current one first


def keyset() -> KeySet:
    """The keys in force, read from settings at call time (cached per configuration)."""
    algorithm = token_settings.ALGORITHM
    if algorithm in ASYMMETRIC_ALGORITHMS:
        return _asymmetric(
            algorithm, token_settings.SIGNING_KEY,
            (token_settings.VERIFYING_KEY, *map(_bytes, token_settings.VERIFYING_KEY_FALLBACKS)),
            _secret_key_chain(),
        )
    explicit = (getattr(settings, "TOKENS", None) or {}).get("SIGNING_KEY")
    if explicit is None:
        keys = tuple(derived_key(secret) for secret in _secret_key_chain())
    else:
        keys = (_bytes(explicit), *map(_bytes, token_settings.SIGNING_KEY_FALLBACKS))
    return _hmac(algorithm, keys)


def _secret_key_chain() -> tuple[str, ...]:
    return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))


@functools.lru_cache(maxsize=8)
def _hmac(algorithm: str, keys: tuple[bytes, ...]) -> KeySet:
    verifying = {}
    for key in keys:
        verifying.setdefault(hmac_kid(key), key)
    return KeySet(algorithm, keys[0], hmac_kid(keys[0]), verifying, (), keys)


@functools.lru_cache(maxsize=8)
def _asymmetric(algorithm: str, signing_key: bytes, public_keys: tuple[bytes, ...],
                secret_keys: tuple[str, ...]) -> KeySet:
    verifying, jwks = {}, []
    for pem in public_keys:
        jwk = _public_jwk(algorithm, pem)
        if jwk["kid"] not in verifying:
            verifying[jwk["kid"]] = pem
            jwks.append(jwk)
    # Fingerprints rotate with SECRET_KEY; the private key, which made them before key ids
    # existed, is still accepted so that sessions from then are re-stamped, not ended.
    secrets = (*(derived_key(secret) for secret in secret_keys), signing_key)
    return KeySet(algorithm, signing_key, jwks[0]["kid"], verifying, tuple(jwks), secrets)


def hmac_kid(key: bytes) -> str:
    """A key id for an HMAC key: one-way, so it says nothing of the key."""
    return hashlib.sha256(b"tokens.kid:" + key).hexdigest()[:16]


def _public_jwk(algorithm: str, pem: bytes) -> dict:
    algo = jwt.get_algorithm_by_name(algorithm)
    jwk = algo.to_jwk(algo.prepare_key(pem), as_dict=True)
    # RFC 7638: the SHA-256 of the required members, in lexicographic order, no whitespace.
    required = {"RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"),
                           sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**{name: jwk[name] for name in required}, "kid": kid, "alg": algorithm, "use": "sig"}


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
