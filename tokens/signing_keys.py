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
import logging
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
from django.conf import settings

from tokens.conf import ASYMMETRIC_ALGORITHMS, derived_key, token_settings
from tokens.exceptions import KeysMisconfigured

logger = logging.getLogger(__name__)

PRIVATE_KEY_TYPES = (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


@dataclass(frozen=True)
class KeySet:
    algorithm: str
    signing_key: bytes
    current_kid: str
    verifying_keys: dict[str, bytes]  # kid -> key, the current one first
    public_jwks: tuple[dict, ...]  # asymmetric only: what /api/auth/jwks/ publishes
    fingerprint_secrets: tuple[bytes, ...]  # the current one first


def keyset() -> KeySet:
    """The keys in force, read from settings at call time (cached per configuration); raises
    KeysMisconfigured (a 503, never a 500 or a 401) for keys that cannot sign or verify."""
    try:
        return _keyset()
    except KeysMisconfigured as exc:
        # The same problems are `check` errors (tokens.E010, E016, E017); checks do not run
        # under gunicorn, so the keys are refused here too, loudly.
        logger.error("Token keys misconfigured: %s", exc.reason)
        raise


def _keyset() -> KeySet:
    algorithm = token_settings.ALGORITHM
    if algorithm in ASYMMETRIC_ALGORITHMS:
        return _asymmetric(
            algorithm, _key("SIGNING_KEY"),
            (_key("VERIFYING_KEY"), *fallback_keys("VERIFYING_KEY_FALLBACKS")),
            _secret_key_chain(),
        )
    explicit = (getattr(settings, "TOKENS", None) or {}).get("SIGNING_KEY")
    if explicit is None:
        keys = tuple(derived_key(secret) for secret in _secret_key_chain())
    else:
        keys = (_key("SIGNING_KEY"), *fallback_keys("SIGNING_KEY_FALLBACKS"))
    return _hmac(algorithm, keys)


def fallback_keys(name: str) -> tuple[bytes, ...]:
    """The keys of a TOKENS fallbacks setting; KeysMisconfigured if it is no list of keys."""
    value = getattr(token_settings, name)
    # A string is no list of keys: iterated, it would make each of its characters a key (and
    # a one-byte HMAC key verifies tokens anyone can sign).
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(key, (str, bytes)) for key in value):
        raise KeysMisconfigured(f"TOKENS[{name!r}] is not a list of keys.")
    return tuple(map(_bytes, value))


def load_key(algorithm: str, pem: bytes, *, private: bool):
    """`pem` loaded as the private (or public) key of an asymmetric `algorithm`; ValueError,
    saying why without quoting the key, if it is not one."""
    try:
        key = jwt.get_algorithm_by_name(algorithm).prepare_key(pem)
    except (ValueError, TypeError, jwt.InvalidKeyError):
        raise ValueError(f"is not a {algorithm} key (PEM)") from None
    if isinstance(key, PRIVATE_KEY_TYPES) != private:
        raise ValueError("is a private key, not the public one" if not private
                         else "is a public key, not the private one")
    return key


def public_pem(key) -> bytes:
    """The public key of a loaded private or public key, as PEM."""
    public = key.public_key() if isinstance(key, PRIVATE_KEY_TYPES) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


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
    # Loaded once per configuration: a private key as a verifying key was a 500 on every
    # request ('RSAPrivateKey' object has no attribute 'verify'), a mismatched pair a 401
    # for every token signed.
    private = _loaded(algorithm, "TOKENS['SIGNING_KEY']", signing_key, private=True)
    labels = ("TOKENS['VERIFYING_KEY']",
              *(f"TOKENS['VERIFYING_KEY_FALLBACKS'][{i}]" for i in range(len(public_keys) - 1)))
    current, *_ = [_loaded(algorithm, label, pem, private=False)
                   for label, pem in zip(labels, public_keys)]
    if public_pem(current) != public_pem(private):
        raise KeysMisconfigured("TOKENS['VERIFYING_KEY'] is not the public key of "
                                "TOKENS['SIGNING_KEY'], so no token signed would verify.")
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


def _loaded(algorithm: str, label: str, pem: bytes, *, private: bool):
    try:
        return load_key(algorithm, pem, private=private)
    except ValueError as exc:
        raise KeysMisconfigured(f"{label} {exc}.") from None


def _key(name: str) -> bytes:
    value = getattr(token_settings, name)
    if not isinstance(value, (str, bytes)):
        raise KeysMisconfigured(f"TOKENS[{name!r}] is not a key (PEM).")
    return _bytes(value)


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
