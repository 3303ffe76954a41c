"""Prometheus metrics: what the service counts, and who may read them at /metrics.

Under gunicorn every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set,
and emptied at start, by config/gunicorn.conf.py) and a scrape adds them up; without it
(runserver, tests) the samples live in the process. Every label value is bound once, at
import: counting is a dict lookup and an increment (in multiprocess mode, a write to a
memory-mapped file). TOKENS["METRICS"] off counts nothing.
"""

import hmac
import ipaddress
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from tokens.conf import token_settings
from tokens.types import EndReason

LOGIN_OUTCOMES = ("success", "invalid_credentials", "throttled", "unavailable")
# The store's verdicts (rotate.lua), then the refusals that come before it.
REFRESH_OUTCOMES = ("rotated", "replayed", "retried", "reused", "reused_before",
                    "session_ended", "expired", "invalid", "user_inactive", "unavailable")
STORE_OPERATIONS = ("create", "abandon", "rotate", "check", "revoke", "logout", "revoke_all",
                    "end_sessions", "restart",
                    "change_retry", "rehash", "list", "limit_reserve", "limit_record",
                    "limit_release", "lockout", "purge", "purge_all", "scan", "probe")
BUDGETS = ("username", "ip", "device")
END_REASONS = tuple(EndReason)

# The error codes of refused logins and refreshes, as outcomes.
LOGIN_CODES = {"invalid_credentials": "invalid_credentials", "throttled": "throttled",
               "token_store_unavailable": "unavailable"}
REFRESH_CODES = {"token_expired": "expired", "token_invalid": "invalid",
                 "user_inactive": "user_inactive", "token_store_unavailable": "unavailable",
                 "session_revoked": "session_ended"}

_logins = Counter("tokens_logins_total", "API logins, by outcome.", ["outcome"])
_refreshes = Counter("tokens_refreshes_total", "Refreshes, by outcome.", ["outcome"])
_store_errors = Counter("tokens_store_errors_total",
                        "Token store calls that failed (each one a 503), by operation.",
                        ["operation"])
_sessions_ended = Counter("tokens_sessions_ended_total", "Sessions ended, by reason.",
                          ["reason"])
_refusals = Counter("tokens_login_limit_refusals_total",
                    "Password checks refused by the login limits, by full budget.", ["budget"])
_store_seconds = Histogram(
    "tokens_store_seconds", "Time spent in a token store call, by operation.", ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

LOGINS = {outcome: _logins.labels(outcome) for outcome in LOGIN_OUTCOMES}
REFRESHES = {outcome: _refreshes.labels(outcome) for outcome in REFRESH_OUTCOMES}
REFRESHES["gone"] = REFRESHES["stale"] = REFRESHES["session_ended"]
STORE_ERRORS = {operation: _store_errors.labels(operation) for operation in STORE_OPERATIONS}
STORE_SECONDS = {operation: _store_seconds.labels(operation) for operation in STORE_OPERATIONS}
SESSIONS_ENDED = {reason: _sessions_ended.labels(reason) for reason in END_REASONS}
REFUSALS = {budget: _refusals.labels(budget) for budget in BUDGETS}


def login(outcome: str) -> None:
    if token_settings.METRICS:
        LOGINS[outcome].inc()


def refresh(outcome: str) -> None:
    """Count a refresh: a store verdict (rotated, gone...) or a refusal before it."""
    if token_settings.METRICS:
        REFRESHES[outcome].inc()


def store_call(operation: str, seconds: float, failed: bool) -> None:
    if token_settings.METRICS:
        STORE_SECONDS[operation].observe(seconds)
        if failed:
            STORE_ERRORS[operation].inc()


def sessions_ended(reason: str, count: int) -> None:
    if token_settings.METRICS and count:
        SESSIONS_ENDED[reason].inc(count)


def login_refused(budgets: tuple[str, ...]) -> None:
    if token_settings.METRICS:
        for budget in budgets:
            REFUSALS[budget].inc()


def exposition() -> tuple[bytes, str]:
    """Every metric in Prometheus' text format, added up over the workers when there are
    several, and its content type."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def scrape_access(*, ip_address: str, authorization: str) -> str:
    """Who may read /metrics: "allowed"; "refused" (a client neither from an allowed address
    nor with the bearer secret); "off" (no address and no secret configured)."""
    networks, secret = token_settings.METRICS_ALLOWED_IPS, token_settings.METRICS_BEARER_TOKEN
    if not networks and not secret:
        return "off"
    if secret:
        scheme, _, presented = authorization.partition(" ")
        # Constant time: how long the comparison takes tells nothing about the secret.
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(),
                                                              secret.encode()):
            return "allowed"
    try:
        address = ipaddress.ip_address(ip_address)
    except ValueError:
        return "refused"
    if any(address in ipaddress.ip_network(net, strict=False) for net in networks):
        return "allowed"
    return "refused"
