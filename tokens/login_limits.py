"""Login limits: failed logins per username and per client IP, counted in the token store.

Used by the DRF throttles (tokens.throttling) and the auth signal receivers (tokens.signals).
"""

from tokens import clock, store
from tokens.conf import parse_rate, token_settings

THROTTLE_RATES = {"username": "LOGIN_FAILURES_PER_USERNAME", "ip": "LOGIN_FAILURES_PER_IP"}


def record_login_failure(*, username: str | None, ip_address: str | None) -> None:
    """Count a failed login that no throttle counted (the admin's, say) against the username
    and the client IP."""
    now_ms = clock.now_ms()
    for scope, ident in (("username", throttle_username(username)), ("ip", ip_address)):
        rate = parse_rate(getattr(token_settings, THROTTLE_RATES[scope]))
        if rate and ident:
            store.record_login_failure(scope=scope, ident=ident, now_ms=now_ms,
                                       window_seconds=rate[1])


def reserve_login_attempt(*, scope: str, ident: str) -> tuple[str | None, float | None]:
    """Count a login attempt against `ident`: (attempt id, None), or (None, seconds to wait)."""
    rate = parse_rate(getattr(token_settings, THROTTLE_RATES[scope]))
    if rate is None:
        return None, None
    limit, window = rate
    return store.reserve_login_attempt(scope=scope, ident=ident, limit=limit, now_ms=clock.now_ms(),
                                       window_seconds=window)


def release_login_attempts(*, attempts: list[tuple[str, str, str]]) -> None:
    """A login succeeded: its attempts no longer count as failures."""
    if attempts:
        store.release_login_attempts(attempts)


def throttle_username(username: str | None) -> str | None:
    # Case-folded: 'Alice' and 'alice' share one budget of failures.
    return username.casefold() if username else None
