"""Logging in: credentials checked within the login limits, and a new session."""

import logging
import time
from collections.abc import Callable

from django.contrib.auth import authenticate, get_user_model, user_logged_in
from django.contrib.auth.models import AbstractBaseUser

from tokens import background, clock, metrics, signals, store, users
from tokens.conf import token_settings
from tokens.exceptions import (
    InvalidCredentials,
    LoginThrottled,
    StoreUnavailable,
    TokenServiceError,
)
from tokens.services import login_limits, security_events
from tokens.services.common import FIRST_GENERATION, acknowledged, issue_pair, new_id, seconds
from tokens.services.security_events import Kind
from tokens.text import printable
from tokens.types import ClientInfo, Login

logger = logging.getLogger(__name__)


def obtain_pair(
    *, request: object | None, username: str, password: str, client: ClientInfo
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


def _obtain_pair(request: object | None, username: str, password: str, client: ClientInfo
                 ) -> Login:
    # Active users only, whatever the authentication backends allow (Django's
    # AllowAllUsersModelBackend lets inactive ones in): refused like a wrong password.
    user, hold = _check_login(request, username, password, client,
                              allowed=lambda user: user.is_active)
    session_id = new_id()
    try:
        jti, now_ms, expires_at = _start_session(user, session_id, client, hold)
    except BaseException as exc:
        login_limits.release_quietly(hold)
        if type(exc) is StoreUnavailable:
            _abandon_later(str(user.pk), session_id)
        raise
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    signals.send(signals.session_started, user=user, session_id=session_id,
               ip_address=client.ip_address, user_agent=client.user_agent)
    return Login(
        pair=issue_pair(str(user.pk), session_id, FIRST_GENERATION, jti, now_ms, expires_at),
        device_cookie=login_limits.device_cookie(username=user.get_username(),
                                                 presented=client.device_cookies),
    )


def _start_session(user: AbstractBaseUser, session_id: str, client: ClientInfo,
                   hold: login_limits.Hold | None) -> tuple[str, int, int]:
    """A new session for `user`; its write releases the login's held attempt (one round
    trip for both)."""
    now_ms = clock.now_ms()
    jti = new_id()
    now_s = now_ms // 1000
    absolute_expires_at = now_s + seconds(token_settings.SESSION_MAX_LIFETIME)
    expires_at = min(now_s + seconds(token_settings.REFRESH_TOKEN_LIFETIME), absolute_expires_at)
    written = store.create_session(
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
    if not written.acknowledged:
        # A 503 follows: no one will ever hold its tokens, so it is not listed for weeks.
        store.revoke(user_id=str(user.pk), session_id=session_id)
        acknowledged(written)
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
    *, request: object | None, username: str, password: str, client: ClientInfo,
    allowed: Callable[[AbstractBaseUser], bool] | None = None,
) -> AbstractBaseUser:
    """The user these credentials authenticate, if `allowed` (say, staff) lets them in,
    checked within the login limits (the API's and the admin's login); raises
    InvalidCredentials or LoginThrottled."""
    user, hold = _check_login(request, username, password, client, allowed)
    login_limits.release_quietly(hold)
    return user


def _check_login(request: object | None, username: str, password: str,
                 client: ClientInfo, allowed: Callable[[AbstractBaseUser], bool] | None = None,
                 ) -> tuple[AbstractBaseUser, login_limits.Hold | None]:
    def check() -> AbstractBaseUser | None:
        user = authenticate(request, username=username, password=password)
        # A user refused after a right password is a failure inside the limits, as a wrong
        # password is: else the throttle would tell the two apart.
        return user if user is not None and (allowed is None or allowed(user)) else None

    user, hold = holding(username=username, client=client, check=check)
    if user is None:
        raise InvalidCredentials()
    return user, hold


def password_matches(*, user: AbstractBaseUser, password: str, client: ClientInfo) -> bool:
    """Whether `password` is the user's, checked within the login limits of their username
    (wrong guesses count like failed logins; over the limit, LoginThrottled)."""
    return limited(username=user.get_username(), client=client,
                    check=lambda: user.check_password(password))


def limited(*, username: object, client: ClientInfo, check):
    result, hold = holding(username=username, client=client, check=check)
    login_limits.release_quietly(hold)
    return result


def holding(*, username: object, client: ClientInfo, check):
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
    signals.send(signals.login_refused, username=printable(str(username)),
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
