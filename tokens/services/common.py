"""What the flows share: minting a token pair, the end of sessions (metrics, signals,
security events), and the replica-lag outcome of a store write."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser

from tokens import clock, jwt, metrics, signals, store, users
from tokens.conf import token_settings
from tokens.exceptions import ReplicasBehind
from tokens.services import security_events
from tokens.services.security_events import Kind
from tokens.types import ClientInfo, EndReason, TokenPair


FIRST_GENERATION = 1


# Revocations that are security events (a logout of one session, or a password change's,
# are not: the latter is recorded as the password change itself).
EVENT_OF_REASON = {EndReason.ADMIN: Kind.REVOKED_BY_ADMIN,
                   EndReason.COMMAND: Kind.REVOKED_BY_COMMAND,
                   EndReason.LOGOUT_ALL: Kind.LOGOUT_ALL}


def record_revocation(user_id: object, reason: EndReason, by: str, client: ClientInfo | None,
                       *, sessions_ended: int, user: AbstractBaseUser | None = None,
                       session_id: str = "") -> None:
    client = client or ClientInfo()
    security_events.record(
        kind=EVENT_OF_REASON[reason], user=user or users.user_by_id(str(user_id)),
        ip_address=client.ip_address, user_agent=client.user_agent, session_id=session_id,
        sessions_ended=sessions_ended, by=by)


def announce_ended(user_id: object, session_ids, reason: EndReason) -> None:
    """Count the sessions that ended and tell the receivers, one signal each."""
    metrics.sessions_ended(reason, len(session_ids))
    for session_id in session_ids:
        signals.send(signals.session_ended, user_id=str(user_id), session_id=session_id,
                   reason=reason)


def issue_pair(
    user_id: str, session_id: str, generation: int, jti: str, issued_at_ms: int, expires_at: int,
    parent: str = "",
) -> TokenPair:
    # The refresh token's claims all come from the store, so a replay inside the leeway
    # re-signs byte for byte the token the first rotation returned.
    refresh = jwt.Claims(
        user_id, session_id, generation, jwt.REFRESH, jti, issued_at_ms // 1000, expires_at, parent
    )
    now_s = int(clock.now())
    access_expires_at = min(now_s + seconds(token_settings.ACCESS_TOKEN_LIFETIME), expires_at)
    access = jwt.Claims(
        user_id, session_id, generation, jwt.ACCESS, new_id(), now_s, access_expires_at
    )
    return TokenPair(
        access_token=jwt.encode(access),
        refresh_token=jwt.encode(refresh),
        expires_in=max(access_expires_at - now_s, 0),
        refresh_expires_in=max(expires_at - now_s, 0),
    )


def acknowledged(*writes: store.Written) -> None:
    """Answer 503 (ReplicasBehind) unless the replicas TOKENS["REPLICA_ACKS"] asks for hold
    every one of `writes`. Called last: each write stands on the primary, so what follows
    it (signals, events, the database) is done first, and the client's retry finds it."""
    if not all(written.acknowledged for written in writes):
        raise ReplicasBehind()


def leeway_ms() -> int:
    return int(token_settings.ROTATION_LEEWAY.total_seconds() * 1000)


def key_hash(idempotency_key: str | None) -> str:
    # Hashed: the store keeps nothing a request could be repeated with verbatim.
    if not idempotency_key:
        return ""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def new_id() -> str:
    return secrets.token_urlsafe(16)


def seconds(duration: timedelta) -> int:
    return int(duration.total_seconds())
