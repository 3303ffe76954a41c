"""TOKENS' own values: known names, durations, rates, replicas, metrics access; and the
signing keys (keys)."""


import ipaddress
from datetime import timedelta

from django.conf import settings
from django.core.checks import Error

from tokens.checks.keys import key_errors

from tokens.conf import (
    ALGORITHMS,
    DURATIONS,
    RATES,
    parse_rate,
    token_settings,
)


MINIMUM_DURATIONS = {"ROTATION_LEEWAY": timedelta(0), "RETRY_WINDOW": timedelta(0),
                     "REPLICA_ACK_TIMEOUT": timedelta(milliseconds=1)}


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
    errors += key_errors()
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
