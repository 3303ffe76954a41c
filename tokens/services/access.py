"""Authenticated requests: an access token's user, its session checked in the store."""

from django.contrib.auth.models import AbstractBaseUser

from tokens import jwt, store, users
from tokens.conf import token_settings
from tokens.exceptions import SessionRevoked
from tokens.services.common import key_hash
from tokens.services.sessions import ending_sessions_of_inactive_user


def authenticate_access(
    *, access_token: str, change_retry_key: str | None = None
) -> tuple[AbstractBaseUser, jwt.Claims]:
    """The user and claims of a valid access token whose session is still live; or, given
    the Idempotency-Key of a password change this token's session made, whose reply was
    lost, of that session before the change (only the password change endpoint does)."""
    claims = jwt.decode(access_token, typ=jwt.ACCESS)
    with ending_sessions_of_inactive_user(claims.sub):
        user = users.active_user(claims.sub)
    if token_settings.CHECK_SESSION_ON_ACCESS and not store.is_active(
        user_id=claims.sub,
        session_id=claims.sid,
        generation=claims.gen,
        fingerprint=users.password_fingerprint(user),
        older_fingerprints=users.older_fingerprints(user.password),
    ) and not (change_retry_key and store.is_change_retry(
        user_id=claims.sub, session_id=claims.sid, generation=claims.gen,
        idempotency_key=key_hash(change_retry_key),
    )):
        raise SessionRevoked()
    return user, claims
