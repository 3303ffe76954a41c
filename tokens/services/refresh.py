"""Refreshing: a refresh token spent once for a new pair, reuse detected; and logging out."""

import logging

from tokens import clock, jwt, metrics, signals, store, users
from tokens.conf import token_settings
from tokens.exceptions import SessionRevoked, TokenReused, TokenServiceError
from tokens.services import security_events
from tokens.services.common import (
    acknowledged,
    announce_ended,
    issue_pair,
    key_hash,
    leeway_ms,
    new_id,
    seconds,
)
from tokens.services.security_events import Kind
from tokens.services.sessions import ending_sessions_of_inactive_user
from tokens.types import ClientInfo, EndReason, TokenPair

logger = logging.getLogger(__name__)


def rotate_refresh(
    *, refresh_token: str, client: ClientInfo, idempotency_key: str | None = None
) -> TokenPair:
    """Spend a refresh token for a new pair; a replay after the leeway ends the session,
    unless it is a retry carrying the Idempotency-Key of the rotation it repeats."""
    try:
        claims, written = _spend(refresh_token, client, idempotency_key)
        rotation = written.result
        if rotation.outcome == "rotated":
            # A new successor waits for the replicas (the client's retry gets it, replayed).
            # Anything else is answered: a replay or retry hands out a successor already
            # issued, and a reuse must be reported now; a 503 would leave keyless clients
            # only the leeway to retry in.
            acknowledged(written)
    except TokenServiceError as exc:
        metrics.refresh(metrics.REFRESH_CODES.get(exc.code, "invalid"))
        raise
    metrics.refresh(rotation.outcome)
    if rotation.outcome == "reused":
        _reuse_detected(claims, client)
        raise TokenReused()
    if rotation.outcome == "reused_before":
        raise TokenReused()  # the session ended by a reuse, told when it happened
    if rotation.outcome in ("gone", "stale"):
        raise SessionRevoked()
    # Every successor handed out for the presented token, first or again, names it as parent.
    return issue_pair(claims.sub, claims.sid, claims.gen, rotation.jti, rotation.issued_at_ms,
                 rotation.expires_at, parent=claims.jti)


def _spend(refresh_token: str, client: ClientInfo, idempotency_key: str | None
           ) -> tuple[jwt.Claims, store.Written[store.Rotation]]:
    claims = jwt.decode(refresh_token, typ=jwt.REFRESH)
    with ending_sessions_of_inactive_user(claims.sub):
        password = users.active_password(claims.sub)
    return claims, store.rotate(
        user_id=claims.sub,
        session_id=claims.sid,
        jti=claims.jti,
        generation=claims.gen,
        fingerprint=users.fingerprint(password),
        older_fingerprints=users.older_fingerprints(password),
        new_jti=new_id(),
        now_ms=clock.now_ms(),
        idle_seconds=seconds(token_settings.REFRESH_TOKEN_LIFETIME),
        leeway_ms=leeway_ms(),
        ip_address=client.ip_address,
        parent=claims.par,
        idempotency_key=key_hash(idempotency_key),
        retry_window_ms=int(token_settings.RETRY_WINDOW.total_seconds() * 1000),
    )


def _reuse_detected(claims: jwt.Claims, client: ClientInfo) -> None:
    # Off the success path: a reuse costs a user lookup and an insert, a rotation neither.
    logger.warning("Refresh token reuse: session revoked (user=%s session=%s ip=%s)",
                   claims.sub, claims.sid, client.ip_address)
    user = users.user_by_id(claims.sub)
    security_events.record(kind=Kind.REUSE, user=user, ip_address=client.ip_address,
                           user_agent=client.user_agent, session_id=claims.sid)
    signals.send(signals.refresh_token_reused, user=user, session_id=claims.sid,
               ip_address=client.ip_address, user_agent=client.user_agent)
    announce_ended(claims.sub, [claims.sid], EndReason.REUSE)


def logout(*, refresh_token: str, client: ClientInfo) -> None:
    """End the session of a valid refresh token; any other string is quietly ignored. A
    token spent before the leeway is reuse here too: the session ends, reported as one."""
    try:
        claims = jwt.decode(refresh_token, typ=jwt.REFRESH)
    except TokenServiceError:
        return  # no validity oracle: the caller learns nothing about the string
    written = store.logout(
        user_id=claims.sub, session_id=claims.sid, jti=claims.jti, generation=claims.gen,
        parent=claims.par, now_ms=clock.now_ms(), leeway_ms=leeway_ms())
    if written.result == "reused":
        _reuse_detected(claims, client)
    elif written.result == "ended":
        announce_ended(claims.sub, [claims.sid], EndReason.LOGOUT)
    acknowledged(written)
