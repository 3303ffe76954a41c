"""The rules of the token service: obtain, rotate, log out, authenticate, list and end sessions.

Services raise domain errors (tokens.exceptions) and know nothing of HTTP; they reach
Redis only through `tokens.store` and PyJWT only through `tokens.jwt`.
"""

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from django.contrib.auth import authenticate, get_user_model, user_logged_in
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from tokens import background, clock, hooks, jwt, login_limits, metrics, security_events, store, users
from tokens.hooks import EndReason
from tokens.keys import keyset
from tokens.conf import token_settings
from tokens.exceptions import (
    InvalidCredentials,
    LoginThrottled,
    ReplicasBehind,
    SessionNotFound,
    SessionRevoked,
    StoreUnavailable,
    TokenReused,
    TokenServiceError,
    UserInactive,
)
from tokens.security_events import Kind
from tokens.text import printable

T = TypeVar("T")

logger = logging.getLogger(__name__)

FIRST_GENERATION = 1

# Revocations that are security events (a logout of one session, or a password change's,
# are not: the latter is recorded as the password change itself).
EVENT_OF_REASON = {EndReason.ADMIN: Kind.REVOKED_BY_ADMIN,
                   EndReason.COMMAND: Kind.REVOKED_BY_COMMAND,
                   EndReason.LOGOUT_ALL: Kind.LOGOUT_ALL}


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from: recorded on the session (user agent, address) and
    counted by the login limits (address, device cookies)."""

    user_agent: str = ""
    ip_address: str = ""
    device_cookies: tuple[str, ...] = ()  # every one presented: junk may come with the real


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True)
class Login:
    pair: TokenPair
    device_cookie: str  # for the client to keep: its own budget of failures next time


def obtain_pair(
    *, request: HttpRequest | None, username: str, password: str, client: ClientInfo
) -> Login:
    """Check credentials within the login limits and start a new session; raises
    InvalidCredentials or LoginThrottled."""
    try:
        login = _obtain_pair(request, username, password, client)
    except TokenServiceError as exc:
        metrics.login(metrics.LOGIN_CODES.get(exc.code, "invalid_credentials"))
        raise
    metrics.login("success")
    return login


def _obtain_pair(request: HttpRequest | None, username: str, password: str, client: ClientInfo
                 ) -> Login:
    # Active users only, whatever the authentication backends allow (Django's
    # AllowAllUsersModelBackend lets inactive ones in): refused like a wrong password.
    user, hold = _check_login(request, username, password, client,
                              allowed=lambda user: user.is_active)
    session_id = _new_id()
    try:
        jti, now_ms, expires_at = _start_session(user, session_id, client, hold)
    except BaseException as exc:
        login_limits.release_quietly(hold)
        if type(exc) is StoreUnavailable:
            _abandon_later(str(user.pk), session_id)
        raise
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    hooks.send(hooks.session_started, user=user, session_id=session_id,
               ip_address=client.ip_address, user_agent=client.user_agent)
    return Login(
        pair=_pair(str(user.pk), session_id, FIRST_GENERATION, jti, now_ms, expires_at),
        device_cookie=login_limits.device_cookie(username=user.get_username(),
                                                 presented=client.device_cookies),
    )


def _start_session(user: AbstractBaseUser, session_id: str, client: ClientInfo,
                   hold: login_limits.Hold | None) -> tuple[str, int, int]:
    """A new session for `user`; its write releases the login's held attempt (one round
    trip for both)."""
    now_ms = clock.now_ms()
    jti = _new_id()
    now_s = now_ms // 1000
    absolute_expires_at = now_s + _seconds(token_settings.SESSION_MAX_LIFETIME)
    expires_at = min(now_s + _seconds(token_settings.REFRESH_TOKEN_LIFETIME), absolute_expires_at)
    store.create_session(
        user_id=str(user.pk),
        session_id=session_id,
        jti=jti,
        generation=FIRST_GENERATION,
        fingerprint=users.password_fingerprint(user),
        now_ms=now_ms,
        expires_at=expires_at,
        absolute_expires_at=absolute_expires_at,
        user_agent=client.user_agent,
        ip_address=client.ip_address,
        release=hold.budgets if hold else (),
        attempt=hold.attempt if hold else "",
    )
    return jti, now_ms, expires_at


# Seconds between the tries to remove a session whose login answered 503 (about two
# minutes in all): the store is failing, so the first tries may fail too.
ABANDON_RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30, 60)


def _abandon_later(user_id: str, session_id: str) -> None:
    """A login answered 503 after its session's write was sent: that write may still run,
    late, in a stalled Redis. Nobody will hold the session's tokens, so remove it (and stop
    the write), off the request, as soon as the store answers again."""
    def abandon() -> None:
        for delay in (0, *ABANDON_RETRY_DELAYS):
            time.sleep(delay)
            try:
                store.abandon_session(user_id=user_id, session_id=session_id)
                return
            except StoreUnavailable:
                continue
        logger.warning("A session whose login answered 503 may be left (user=%s session=%s):"
                       " the token store did not answer for minutes.", user_id, session_id)

    background.defer(abandon, name="abandon a session whose login failed")


def check_login(
    *, request: HttpRequest | None, username: str, password: str, client: ClientInfo,
    allowed: Callable[[AbstractBaseUser], bool] | None = None,
) -> AbstractBaseUser:
    """The user these credentials authenticate, if `allowed` (say, staff) lets them in,
    checked within the login limits (the API's and the admin's login); raises
    InvalidCredentials or LoginThrottled."""
    user, hold = _check_login(request, username, password, client, allowed)
    login_limits.release_quietly(hold)
    return user


def _check_login(request: HttpRequest | None, username: str, password: str,
                 client: ClientInfo, allowed: Callable[[AbstractBaseUser], bool] | None = None,
                 ) -> tuple[AbstractBaseUser, login_limits.Hold | None]:
    def check() -> AbstractBaseUser | None:
        user = authenticate(request, username=username, password=password)
        # A user refused after a right password is a failure inside the limits, as a wrong
        # password is: else the throttle would tell the two apart.
        return user if user is not None and (allowed is None or allowed(user)) else None

    user, hold = _holding(username=username, client=client, check=check)
    if user is None:
        raise InvalidCredentials()
    return user, hold


def rotate_refresh(
    *, refresh_token: str, client: ClientInfo, idempotency_key: str | None = None
) -> TokenPair:
    """Spend a refresh token for a new pair; a replay after the leeway ends the session,
    unless it is a retry carrying the Idempotency-Key of the rotation it repeats."""
    try:
        claims, rotation = _spend(refresh_token, client, idempotency_key)
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
    return _pair(claims.sub, claims.sid, claims.gen, rotation.jti, rotation.issued_at_ms,
                 rotation.expires_at, parent=claims.jti)


def _spend(refresh_token: str, client: ClientInfo, idempotency_key: str | None
           ) -> tuple[jwt.Claims, store.Rotation]:
    claims = jwt.decode(refresh_token, typ=jwt.REFRESH)
    with _ending_sessions_of_inactive_user(claims.sub):
        password = users.active_password(claims.sub)
    return claims, store.rotate(
        user_id=claims.sub,
        session_id=claims.sid,
        jti=claims.jti,
        generation=claims.gen,
        fingerprint=users.fingerprint(password),
        older_fingerprints=users.older_fingerprints(password),
        new_jti=_new_id(),
        now_ms=clock.now_ms(),
        idle_seconds=_seconds(token_settings.REFRESH_TOKEN_LIFETIME),
        leeway_ms=_leeway_ms(),
        ip_address=client.ip_address,
        parent=claims.par,
        idempotency_key=_key_hash(idempotency_key),
        retry_window_ms=int(token_settings.RETRY_WINDOW.total_seconds() * 1000),
    )


def _reuse_detected(claims: jwt.Claims, client: ClientInfo) -> None:
    # Off the success path: a reuse costs a user lookup and an insert, a rotation neither.
    logger.warning("Refresh token reuse: session revoked (user=%s session=%s ip=%s)",
                   claims.sub, claims.sid, client.ip_address)
    user = users.user_by_id(claims.sub)
    security_events.record(kind=Kind.REUSE, user=user, ip_address=client.ip_address,
                           user_agent=client.user_agent, session_id=claims.sid)
    hooks.send(hooks.refresh_token_reused, user=user, session_id=claims.sid,
               ip_address=client.ip_address, user_agent=client.user_agent)
    _ended(claims.sub, [claims.sid], EndReason.REUSE)


def logout(*, refresh_token: str, client: ClientInfo) -> None:
    """End the session of a valid refresh token; any other string is quietly ignored. A
    token spent before the leeway is reuse here too: the session ends, reported as one."""
    try:
        claims = jwt.decode(refresh_token, typ=jwt.REFRESH)
    except TokenServiceError:
        return  # no validity oracle: the caller learns nothing about the string
    outcome, behind = _stood(lambda: store.logout(
        user_id=claims.sub, session_id=claims.sid, jti=claims.jti, generation=claims.gen,
        parent=claims.par, now_ms=clock.now_ms(), leeway_ms=_leeway_ms()))
    if outcome == "reused":
        _reuse_detected(claims, client)
    elif outcome == "ended":
        _ended(claims.sub, [claims.sid], EndReason.LOGOUT)
    _raise_if(behind)


def keep_sessions_through_rehash(*, user_id: object, old_hash: str, new_hash: str) -> None:
    """The same password is about to be stored under a new hash (Django's re-hash on login):
    the user's sessions accept the new hash as they did the old; raises StoreUnavailable."""
    store.add_fingerprint(user_id=str(user_id), old=users.fingerprint(old_hash),
                          new=users.fingerprint(new_hash),
                          older_fingerprints=users.older_fingerprints(old_hash))


def revoke_all_sessions(*, user_id: object, reason: EndReason, by: str = "",
                        client: ClientInfo | None = None) -> int:
    """End every session of a user (API, admin, commands, lifecycle hooks), for `reason`,
    done `by` an admin or a command; returns the count."""
    ended, behind = _stood(lambda: store.revoke_all(user_id=str(user_id)))
    if ended and reason in EVENT_OF_REASON:
        _record_revocation(user_id, reason, by, client, sessions_ended=len(ended))
    _ended(user_id, ended, reason)
    _raise_if(behind)
    return len(ended)


def change_password(
    *, user: AbstractBaseUser, claims: jwt.Claims, old_password: str, new_password: str,
    client: ClientInfo, idempotency_key: str | None = None,
) -> TokenPair:
    """Change the password; the current session goes on (same id) with a fresh pair, every
    other session ends, and every token issued before the change is refused. The old
    password is checked within the login limits: a stolen token is no password oracle.
    A retry with the Idempotency-Key of a change whose reply was lost answers as the change
    did: the same successor if the new password is stored, else the change made again."""
    key = _key_hash(idempotency_key)
    retry = bool(key) and store.is_change_retry(
        user_id=claims.sub, session_id=claims.sid, generation=claims.gen, idempotency_key=key)
    if retry and check_old_password(user=user, password=new_password, client=client):
        pair, behind = _restart(user, claims, key)  # stored: the recorded successor
        end_sessions_of_old_passwords(user=user)  # those a first try left, if any
        _raise_if(behind)
        return pair
    if not check_old_password(user=user, password=old_password, client=client):
        raise ValidationError({"old_password": ["The old password is not correct."]})
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
        pair, behind = _restart(user, claims, key, previous)
    _raise_if(end_sessions_of_old_passwords(user=user) or behind)
    return pair


def end_sessions_of_old_passwords(*, user: AbstractBaseUser) -> ReplicasBehind | None:
    """Remove the sessions a password change or reset left behind: every session that does
    not accept the password now stored (a login with the new one meanwhile stays). They are refused already (their fingerprint is the old
    password's), so a store failure here fails nothing: `purge_tokens`, or their first use,
    removes them. A batch at a time, whatever the user's session count."""
    keep = (users.password_fingerprint(user), *users.older_fingerprints(user.password))
    try:
        ended, behind = _stood(lambda: store.end_sessions(user_id=str(user.pk), keep=keep))
    except StoreUnavailable:
        logger.warning("Password changed (user=%s); its other sessions, refused already, "
                       "are left for purge_tokens: the token store failed.", user.pk)
        return None
    _ended(user.pk, ended, EndReason.PASSWORD_CHANGE)
    return behind


def _restart(user: AbstractBaseUser, claims: jwt.Claims, key: str, previous: str = ""
             ) -> tuple[TokenPair, ReplicasBehind | None]:
    rotation, behind = _stood(lambda: store.restart(
        user_id=claims.sub,
        session_id=claims.sid,
        generation=claims.gen,
        fingerprint=users.password_fingerprint(user),
        new_jti=_new_id(),
        now_ms=clock.now_ms(),
        idle_seconds=_seconds(token_settings.REFRESH_TOKEN_LIFETIME),
        idempotency_key=key,
        previous_fingerprint=previous,
    ))
    if rotation.outcome not in ("rotated", "retried"):
        raise SessionRevoked()
    return _pair(claims.sub, claims.sid, claims.gen + 1, rotation.jti, rotation.issued_at_ms,
                 rotation.expires_at), behind


def check_old_password(*, user: AbstractBaseUser, password: str, client: ClientInfo) -> bool:
    """Whether `password` is the user's, checked within the login limits of their username
    (wrong guesses count like failed logins; over the limit, LoginThrottled)."""
    return _limited(username=user.get_username(), client=client,
                    check=lambda: user.check_password(password))


def _limited(*, username: object, client: ClientInfo, check):
    result, hold = _holding(username=username, client=client, check=check)
    login_limits.release_quietly(hold)
    return result


def _holding(*, username: object, client: ClientInfo, check):
    try:
        return login_limits.holding(username=username, ip_address=client.ip_address,
                                    device_cookies=client.device_cookies, check=check)
    except LoginThrottled as refused:
        _login_refused(username, client, refused)
        raise


def _login_refused(username: object, client: ClientInfo, refused: LoginThrottled) -> None:
    metrics.login_refused(refused.budgets)
    try:
        # One event per account and window: refusals cost an attacker nothing, so writing
        # one row each would let them fill the table.
        locked_out = "username" in refused.budgets and login_limits.first_lockout(
            username=username)
    except StoreUnavailable:
        locked_out = False  # logged by the store; the refusal stands
    if locked_out:
        security_events.record(kind=Kind.LOCKED_OUT, user=_user_named(username),
                               username=username, ip_address=client.ip_address,
                               user_agent=client.user_agent)
    hooks.send(hooks.login_refused, username=printable(str(username)),
               ip_address=client.ip_address, user_agent=client.user_agent,
               wait=refused.wait, budgets=refused.budgets)


def _user_named(username: object) -> AbstractBaseUser | None:
    # The account the username budget protects: the limits count every spelling of a name
    # as one ("ALICE" locks out alice), so the one account of that name in any case, if
    # only one. Looked up whether or not it exists: a lockout takes as long for both.
    model = get_user_model()
    found = list(model._default_manager.filter(
        **{f"{model.USERNAME_FIELD}__iexact": str(username).strip()})[:2])
    return found[0] if len(found) == 1 else None


def purge(*, batch_size: int, dry_run: bool, progress=lambda report: None) -> store.PurgeReport:
    """Clean the store of what TTLs cannot remove (see store.purge)."""
    return store.purge(
        fingerprints=users.current_fingerprints, batch_size=batch_size, dry_run=dry_run,
        progress=progress,
    )


@dataclass(frozen=True)
class KeyUsage:
    """The keys in force, and how many stored sessions each fingerprint key still stamps."""

    algorithm: str
    current_kid: str
    fallback_kids: tuple[str, ...]
    stamped: tuple[int, ...]  # sessions per fingerprint key: current first, then fallbacks
    unknown: int  # sessions no key recognises (dead: purge_tokens removes them)


def key_usage(*, batch_size: int = 1000) -> KeyUsage:
    """Which keys sign and verify, and whether a fallback still matters to any session."""
    keys = keyset()
    counts = [0] * len(keys.fingerprint_secrets)
    unknown = 0
    sessions = list(store.session_fingerprints(batch_size=batch_size))
    known = users.current_fingerprints({uid for uid, _, _ in sessions})
    for uid, fp, fpx in sessions:
        matches = [i for i, x in enumerate(known.get(uid, ())) if x == fp or x in fpx]
        if matches:
            counts[matches[0]] += 1
        else:
            unknown += 1
    fallbacks = tuple(kid for kid in keys.verifying_keys if kid != keys.current_kid)
    return KeyUsage(keys.algorithm, keys.current_kid, fallbacks, tuple(counts), unknown)


def purge_all(*, batch_size: int, by: str) -> int:
    """Emergency: end every session of every user (counted and recorded as one event;
    session_ended is not sent for each)."""
    count = store.purge_all(batch_size=batch_size)
    metrics.sessions_ended(EndReason.COMMAND, count)
    security_events.record(kind=Kind.REVOKED_BY_COMMAND, sessions_ended=count, by=by)
    return count


def authenticate_access(
    *, access_token: str, change_retry_key: str | None = None
) -> tuple[AbstractBaseUser, jwt.Claims]:
    """The user and claims of a valid access token whose session is still live; or, given
    the Idempotency-Key of a password change this token's session made, whose reply was
    lost, of that session before the change (only the password change endpoint does)."""
    claims = jwt.decode(access_token, typ=jwt.ACCESS)
    with _ending_sessions_of_inactive_user(claims.sub):
        user = users.active_user(claims.sub)
    if token_settings.CHECK_SESSION_ON_ACCESS and not store.is_active(
        user_id=claims.sub,
        session_id=claims.sid,
        generation=claims.gen,
        fingerprint=users.password_fingerprint(user),
        older_fingerprints=users.older_fingerprints(user.password),
    ) and not (change_retry_key and store.is_change_retry(
        user_id=claims.sub, session_id=claims.sid, generation=claims.gen,
        idempotency_key=_key_hash(change_retry_key),
    )):
        raise SessionRevoked()
    return user, claims


def list_sessions(*, user: AbstractBaseUser) -> list[store.Session]:
    """The user's live sessions, newest first."""
    return store.list_sessions(user_id=str(user.pk), fingerprint=users.password_fingerprint(user),
                               older_fingerprints=users.older_fingerprints(user.password))


def end_session(*, user: AbstractBaseUser, session_id: str, reason: EndReason,
                by: str = "") -> bool:
    """End one of the user's sessions if it is live (True if it was), for `reason`, done
    `by` an admin or a command. Idempotent: ending an ended session, or another user's,
    changes nothing."""
    live, behind = _stood(lambda: store.revoke(user_id=str(user.pk), session_id=session_id))
    if live and reason in EVENT_OF_REASON:
        _record_revocation(user.pk, reason, by, None, sessions_ended=1, user=user,
                           session_id=session_id)
    if live:
        _ended(user.pk, [session_id], reason)
    _raise_if(behind)
    return live


def revoke_session(*, user: AbstractBaseUser, session_id: str, reason: EndReason,
                   by: str = "") -> None:
    """End one of the user's sessions; raises SessionNotFound if it is not theirs or not live."""
    if not end_session(user=user, session_id=session_id, reason=reason, by=by):
        raise SessionNotFound()


def _record_revocation(user_id: object, reason: EndReason, by: str, client: ClientInfo | None,
                       *, sessions_ended: int, user: AbstractBaseUser | None = None,
                       session_id: str = "") -> None:
    client = client or ClientInfo()
    security_events.record(
        kind=EVENT_OF_REASON[reason], user=user or users.user_by_id(str(user_id)),
        ip_address=client.ip_address, user_agent=client.user_agent, session_id=session_id,
        sessions_ended=sessions_ended, by=by)


def _ended(user_id: object, session_ids, reason: EndReason) -> None:
    """Count the sessions that ended and tell the receivers, one signal each."""
    metrics.sessions_ended(reason, len(session_ids))
    for session_id in session_ids:
        hooks.send(hooks.session_ended, user_id=str(user_id), session_id=session_id,
                   reason=reason)


@contextmanager
def _ending_sessions_of_inactive_user(user_id: str) -> Iterator[None]:
    # A user deactivated by a path that sends no signal (QuerySet.update, raw SQL) still
    # has sessions in Redis: end them the first time one is refused, so that reactivating
    # the user does not bring them back.
    try:
        yield
    except UserInactive:
        revoke_all_sessions(user_id=user_id, reason=EndReason.USER_DEACTIVATED)
        raise


def _pair(
    user_id: str, session_id: str, generation: int, jti: str, issued_at_ms: int, expires_at: int,
    parent: str = "",
) -> TokenPair:
    # The refresh token's claims all come from the store, so a replay inside the leeway
    # re-signs byte for byte the token the first rotation returned.
    refresh = jwt.Claims(
        user_id, session_id, generation, jwt.REFRESH, jti, issued_at_ms // 1000, expires_at, parent
    )
    now_s = int(clock.now())
    access_expires_at = min(now_s + _seconds(token_settings.ACCESS_TOKEN_LIFETIME), expires_at)
    access = jwt.Claims(
        user_id, session_id, generation, jwt.ACCESS, _new_id(), now_s, access_expires_at
    )
    return TokenPair(
        access_token=jwt.encode(access),
        refresh_token=jwt.encode(refresh),
        expires_in=max(access_expires_at - now_s, 0),
        refresh_expires_in=max(expires_at - now_s, 0),
    )


def _stood(call: Callable[[], T]) -> tuple[T, ReplicasBehind | None]:
    """A store write's result, also when its replicas lag (TOKENS["REPLICA_ACKS"]): it stood
    on the primary, so what follows it (signals, events, the database) is done before the
    503 that _raise_if raises."""
    try:
        return call(), None
    except ReplicasBehind as behind:
        return behind.result, behind


def _raise_if(behind: ReplicasBehind | None) -> None:
    if behind is not None:
        raise behind


def _leeway_ms() -> int:
    return int(token_settings.ROTATION_LEEWAY.total_seconds() * 1000)


def _key_hash(idempotency_key: str | None) -> str:
    # Hashed: the store keeps nothing a request could be repeated with verbatim.
    if not idempotency_key:
        return ""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def _new_id() -> str:
    return secrets.token_urlsafe(16)


def _seconds(duration) -> int:
    return int(duration.total_seconds())
