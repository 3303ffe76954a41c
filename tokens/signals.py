"""Signals for integrators: what happened to sessions and logins, to email a user, page
someone, or feed a SIEM. Sent by the services, never by views; a receiver that raises is
logged and ignored, so it can never break a login, a refresh or a logout.

Every signal is sent with `sender=None` and keyword arguments only (see README,
"Security events"). Nothing sent carries a token or a password; client text (user agent,
username) arrives with control characters escaped, as the sessions store it.
"""

import logging

from django.dispatch import Signal

from tokens.types import EndReason  # noqa: F401 (what session_ended's `reason` is)

logger = logging.getLogger(__name__)

# user, session_id, ip_address, user_agent
session_started = Signal()
# user_id (the primary key as text), session_id, reason (an EndReason)
session_ended = Signal()
# user, session_id, ip_address, user_agent: a spent refresh token was presented after the
# leeway; the session has ended (session_ended with reason "reuse" follows).
refresh_token_reused = Signal()
# username (as the client sent it, escaped), ip_address, user_agent, wait (seconds until a
# new attempt is counted), budgets (the full ones: "username", "ip", "device")
login_refused = Signal()


def send(signal: Signal, **kwargs) -> None:
    """Send `signal` to every receiver; one that raises is logged (its exception's type and
    message only: the arguments stay out of the log) and the others still run."""
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("Signal receiver %s raised %s: %s", _name(receiver),
                         type(result).__name__, result)


def _name(receiver) -> str:
    return f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', receiver)}"
