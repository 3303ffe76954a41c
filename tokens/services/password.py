"""Changing the password: the caller's session goes on under a new generation, every
other ends; and a re-hash of the same password, which ends none."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from tokens import clock, jwt, store, users
from tokens.conf import token_settings
from tokens.exceptions import SessionRevoked, WrongPassword
from tokens.services import security_events
from tokens.services.common import (
    acknowledged,
    issue_pair,
    key_hash,
    new_id,
    seconds,
)
from tokens.services.login import password_matches
from tokens.services.security_events import Kind
from tokens.services.sessions import end_sessions_of_old_passwords
from tokens.types import ClientInfo, TokenPair


def change_password(
    *, user: AbstractBaseUser, claims: jwt.Claims, old_password: str, new_password: str,
    client: ClientInfo, idempotency_key: str | None = None,
) -> TokenPair:
    """Change the password; the current session goes on (same id) with a fresh pair, every
    other session ends, and every token issued before the change is refused. The old
    password is checked within the login limits: a stolen token is no password oracle.
    A retry with the Idempotency-Key of a change whose reply was lost answers as the change
    did: the same successor if the new password is stored, else the change made again."""
    key = key_hash(idempotency_key)
    retry = bool(key) and store.is_change_retry(
        user_id=claims.sub, session_id=claims.sid, generation=claims.gen, idempotency_key=key)
    if retry and password_matches(user=user, password=new_password, client=client):
        pair, written = _restart(user, claims, key)  # stored: the recorded successor
        end_sessions_of_old_passwords(user=user)  # those a first try left, if any
        acknowledged(written)
        return pair
    if not password_matches(user=user, password=old_password, client=client):
        raise WrongPassword()
    previous = users.password_fingerprint(user)
    users.set_new_password(user, new_password)
    # Redis inside the transaction, in one atomic script for the caller's session: if the
    # store is down, or the session ended or changed generation meanwhile, the password
    # stays as it was (503 or 401) and no session is touched.
    with transaction.atomic():
        user.save(update_fields=["password"])
        security_events.record(kind=Kind.PASSWORD_CHANGED, user=user, session_id=claims.sid,
                               ip_address=client.ip_address, user_agent=client.user_agent,
                               by="password change")
        # Replicas lagging: the change stands on the primary, so it is committed here too
        # (else the user's sessions would hold a password the database does not), and the
        # client's retry with its Idempotency-Key gets the same successor.
        pair, written = _restart(user, claims, key, previous)
    # The others are refused already, by their fingerprint: only the caller's session waits
    # for the replicas.
    end_sessions_of_old_passwords(user=user)
    acknowledged(written)
    return pair


def _restart(user: AbstractBaseUser, claims: jwt.Claims, key: str, previous: str = ""
             ) -> tuple[TokenPair, store.Written[store.Rotation]]:
    written = store.restart(
        user_id=claims.sub,
        session_id=claims.sid,
        generation=claims.gen,
        fingerprint=users.password_fingerprint(user),
        new_jti=new_id(),
        now_ms=clock.now_ms(),
        idle_seconds=seconds(token_settings.REFRESH_TOKEN_LIFETIME),
        idempotency_key=key,
        previous_fingerprint=previous,
    )
    rotation = written.result
    if rotation.outcome not in ("rotated", "retried"):
        raise SessionRevoked()
    return issue_pair(claims.sub, claims.sid, claims.gen + 1, rotation.jti, rotation.issued_at_ms,
                      rotation.expires_at), written


def keep_sessions_through_rehash(*, user_id: object, old_hash: str, new_hash: str) -> None:
    """The same password is about to be stored under a new hash (Django's re-hash on login):
    the user's sessions accept the new hash as they did the old; raises StoreUnavailable."""
    acknowledged(store.add_fingerprint(user_id=str(user_id), old=users.fingerprint(old_hash),
                                       new=users.fingerprint(new_hash),
                                       older_fingerprints=users.older_fingerprints(old_hash)))
