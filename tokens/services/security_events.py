"""Security events in the database: written for rare events only (a reuse, a revocation by
an admin or a command, a password change, a lockout, a logout everywhere), never on the
refresh or authenticated-request path; kept for TOKENS["SECURITY_EVENT_RETENTION"]."""

import logging
from datetime import datetime, timezone

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction

from tokens import clock
from tokens.conf import token_settings
from tokens.models import SecurityEvent
from tokens.text import printable

Kind = SecurityEvent.Kind

logger = logging.getLogger(__name__)


def record(*, kind: str, user: AbstractBaseUser | None = None, username: object = None,
           ip_address: str = "", user_agent: str = "", session_id: str = "",
           sessions_ended: int = 0, by: str = "") -> SecurityEvent | None:
    """Write one event. Client text (username, address, user agent) is stored escaped, as
    the sessions store it, and cut to its column. A database that refuses the row is logged
    (an error) and changes nothing else: the reuse, lockout or revocation it records stands
    and is answered as always (in its own savepoint, so a surrounding transaction goes on)."""
    if username is None:
        username = user.get_username() if user is not None else ""
    try:
        with transaction.atomic():
            return SecurityEvent.objects.create(
                kind=kind, created_at=_now(), user=user, username=_text(username, 150),
                ip_address=_text(ip_address, 64), user_agent=_text(user_agent, 256),
                session_id=session_id[:64], sessions_ended=sessions_ended,
                by=_text(by, 150),
            )
    except DatabaseError as exc:
        logger.error("Security event %r not recorded: %s: %s", kind, type(exc).__name__, exc)
        return None


def purge(*, dry_run: bool = False) -> int:
    """Delete the events older than the retention; returns how many (would be) deleted."""
    older = SecurityEvent.objects.filter(
        created_at__lt=_now() - token_settings.SECURITY_EVENT_RETENTION)
    if dry_run:
        return older.count()
    return older.delete()[0]


def _now() -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=timezone.utc)


def _text(value: object, limit: int) -> str:
    return printable(str(value))[:limit]
