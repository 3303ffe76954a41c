"""The signing keys: of the right kind for the algorithm, long enough, a pair, their
fallbacks loadable, and few."""



from django.conf import settings
from django.core.checks import Error, Warning

from tokens.conf import (
    ALGORITHMS,
    ASYMMETRIC_ALGORITHMS,
    MIN_KEY_BYTES,
    token_settings,
)
from tokens.exceptions import KeysMisconfigured
from tokens.signing_keys import fallback_keys, load_key, public_pem


KEY_HINT = ("SIGNING_KEY is the private key (PEM), VERIFYING_KEY its public key "
            "(`openssl pkey -in private.pem -pubout`), VERIFYING_KEY_FALLBACKS the public "
            "keys of retired private keys.")
FALLBACKS_HINT = "A list of keys, e.g. [old_key], even for one key."


def key_errors() -> list[Error]:
    """The signing keys' errors under the configured algorithm (an unknown one is E008)."""
    algorithm = token_settings.ALGORITHM
    if algorithm in ASYMMETRIC_ALGORITHMS:
        return _asymmetric_key_errors(algorithm)
    if algorithm in ALGORITHMS:
        return _hmac_key_errors(algorithm)
    return []


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
            errors.append(Error(f"TOKENS[{name!r}] {exc}.", hint=KEY_HINT, id="tokens.E019"))
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
                                hint=KEY_HINT, id="tokens.E022"))
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
    for i, (label, key) in enumerate(keys):
        if len(key) < minimum:
            errors.append(Error(
                f"{label} is shorter than {minimum} bytes, the minimum for {algorithm}.",
                hint="Use a longer random key, or leave SIGNING_KEY unset to derive one from "
                     "SECRET_KEY.", id="tokens.E009" if i == 0 else "tokens.E023"))
    return errors



# More fallbacks than this and the list has likely outlived its rotations.
MAX_FALLBACK_KEYS = 3


def check_signing_keys(app_configs=None, **kwargs) -> list[Warning]:
    """Fallback keys: none equal to the current key or to each other, and not too many."""
    if token_settings.ALGORITHM not in ALGORITHMS or key_errors():
        return []  # reported as errors already
    from tokens.signing_keys import keyset

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
