"""A user's sessions: listed, ended one or all, and those of older passwords removed."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractBaseUser

from tokens import store, users
from tokens.exceptions import (
    SessionNotFound,
    StoreUnavailable,
    UserInactive,
)
from tokens.services.common import (
    acknowledged,
    EVENT_OF_REASON,
    announce_ended,
    record_revocation,
)
from tokens.types import ClientInfo, EndReason

logger = logging.getLogger(__name__)


def list_sessions(*, user: AbstractBaseUser) -> list[store.Session]:
    """The user's live sessions, newest first."""
    return store.list_sessions(user_id=str(user.pk), fingerprint=users.password_fingerprint(user),
                               older_fingerprints=users.older_fingerprints(user.password))


def end_session(*, user: AbstractBaseUser, session_id: str, reason: EndReason,
                by: str = "") -> bool:
    """End one of the user's sessions if it is live (True if it was), for `reason`, done
    `by` an admin or a command. Idempotent: ending an ended session, or another user's,
    changes nothing."""
    written = store.revoke(user_id=str(user.pk), session_id=session_id)
    live = written.result
    if live and reason in EVENT_OF_REASON:
        record_revocation(user.pk, reason, by, None, sessions_ended=1, user=user,
                           session_id=session_id)
    if live:
        announce_ended(user.pk, [session_id], reason)
    acknowledged(written)
    return live


def revoke_session(*, user: AbstractBaseUser, session_id: str, reason: EndReason,
                   by: str = "") -> None:
    """End one of the user's sessions; raises SessionNotFound if it is not theirs or not live."""
    if not end_session(user=user, session_id=session_id, reason=reason, by=by):
        raise SessionNotFound()


def revoke_all_sessions(*, user_id: object, reason: EndReason, by: str = "",
                        client: ClientInfo | None = None) -> int:
    """End every session of a user (API, admin, commands, lifecycle hooks), for `reason`,
    done `by` an admin or a command; returns the count."""
    written = store.revoke_all(user_id=str(user_id))
    ended = written.result
    if ended and reason in EVENT_OF_REASON:
        record_revocation(user_id, reason, by, client, sessions_ended=len(ended))
    announce_ended(user_id, ended, reason)
    acknowledged(written)
    return len(ended)


def end_sessions_of_old_passwords(*, user: AbstractBaseUser) -> store.Written[list[str]]:
    """Remove the sessions a password change or reset left behind: every session that does
    not accept the password now stored (a login with the new one meanwhile stays), a batch
    at a time, whatever the user's session count. They are refused already (their
    fingerprint is the old password's), so a store failure here fails nothing:
    `purge_tokens`, or their first use, removes them."""
    keep = (users.password_fingerprint(user), *users.older_fingerprints(user.password))
    try:
        written = store.end_sessions(user_id=str(user.pk), keep=keep)
    except StoreUnavailable:
        logger.warning("Password changed (user=%s); its other sessions, refused already, "
                       "are left for purge_tokens: the token store failed.", user.pk)
        return store.Written([])
    announce_ended(user.pk, written.result, EndReason.PASSWORD_CHANGE)
    return written


@contextmanager
def ending_sessions_of_inactive_user(user_id: str) -> Iterator[None]:
    # A user deactivated by a path that sends no signal (QuerySet.update, raw SQL) still
    # has sessions in Redis: end them the first time one is refused, so that reactivating
    # the user does not bring them back.
    try:
        yield
    except UserInactive:
        revoke_all_sessions(user_id=user_id, reason=EndReason.USER_DEACTIVATED)
        raise
