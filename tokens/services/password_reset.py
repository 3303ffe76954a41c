"""Forgotten passwords: a reset link by email, and the new password it sets.

Django does the hard parts: PasswordResetForm.get_users picks the active users with a
usable password for an address, default_token_generator makes and checks the one-time
token (it covers the password hash and last login, so a used link is dead), and the
password validators judge the new password.

No answer says whether an address has an account, by body or by timing: a request only
counts against the limits before its 202, and the lookup, the token and the email run on
the background thread (tokens.background), handed over once the response is sent, so
nothing the client can observe waits for them, not even the end of the connection.

The link is built from TOKENS["PASSWORD_RESET_URL"] alone, never from the request's Host,
and is only ever handed to an email backend that sends it somewhere (with DEBUG off, not
the console or a file: the logs must never hold a usable link).
"""

import enum
import functools
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.dummy import EmailBackend as DummyBackend
from django.core.mail.backends.locmem import EmailBackend as MemoryBackend
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.module_loading import import_string

from tokens import background, users
from tokens.conf import token_settings
from tokens.exceptions import ResetLinkInvalid
from tokens.services import login_limits, security_events
from tokens.services.sessions import end_sessions_of_old_passwords

logger = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "tokens/password_reset_subject.txt"
BODY_TEMPLATE = "tokens/password_reset_email.txt"


class EmailBackendKind(enum.Enum):
    """Where Django's EMAIL_BACKEND puts a message."""

    SENDS = "sends"  # SMTP, or any backend this module does not know
    WRITES = "writes"  # the console or a file (filebased is a console backend)
    MEMORY = "memory"  # django.core.mail.outbox: the test runner's backend
    NOTHING = "nothing"  # dummy


def email_backend_kind() -> EmailBackendKind:
    """What the configured EMAIL_BACKEND does with a message."""
    try:
        backend = import_string(settings.EMAIL_BACKEND)
    except ImportError:
        return EmailBackendKind.SENDS  # Django's own error when sending says more
    for base, kind in ((ConsoleBackend, EmailBackendKind.WRITES),
                       (MemoryBackend, EmailBackendKind.MEMORY),
                       (DummyBackend, EmailBackendKind.NOTHING)):
        if isinstance(backend, type) and issubclass(backend, base):
            return kind
    return EmailBackendKind.SENDS


def reset_url_problem(url: object) -> str | None:
    """Why `url` (TOKENS["PASSWORD_RESET_URL"]) cannot make a reset link, or None."""
    name = "TOKENS['PASSWORD_RESET_URL']"
    if not url:
        return f"{name} is not set"
    if not isinstance(url, str) or "{uid}" not in url or "{token}" not in url:
        return f"{name} must be a string with {{uid}} and {{token}}"
    try:
        parts = urlsplit(url.format(uid="uid", token="token"))
    except (KeyError, IndexError, ValueError):
        return f"{name} holds a {{...}} field other than {{uid}} and {{token}}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name} is not an absolute http(s) URL"
    return None


def request_reset(*, email: str, ip_address: str) -> Callable[[], None]:
    """Count a reset request (raises ResetThrottled) and return what to call once the
    response is sent: it hands the delivery to the background thread."""
    login_limits.count_reset_request(email=email, ip_address=ip_address)

    def deliver_later() -> None:
        background.defer(functools.partial(deliver, email=email), name="password reset")

    return deliver_later


def deliver(*, email: str) -> int:
    """Email a reset link to each active user with this address; returns how many."""
    refusal = _delivery_refusal()
    if refusal is not None:  # logged for every request, so the log tells no address apart
        logger.error("Password reset email not sent: %s", refusal)
        return 0
    sent = 0
    for user in PasswordResetForm().get_users(email):
        try:
            _send(user)
            sent += 1
        except Exception as exc:  # after the response: nobody to tell but the log
            logger.error("Password reset email not sent (user=%s): %s", user.pk,
                         type(exc).__name__)
    return sent


def reset_link(user: AbstractBaseUser) -> str:
    """The one-time link: TOKENS['PASSWORD_RESET_URL'] with the user's uid and a token."""
    return token_settings.PASSWORD_RESET_URL.format(
        uid=urlsafe_base64_encode(force_bytes(user.pk)),
        token=default_token_generator.make_token(user),
    )


def confirm_reset(*, uid: str, token: str, new_password: str, ip_address: str = "") -> None:
    """Set the new password if the link is good (else ResetLinkInvalid) and the password
    passes the validators (else ValidationError); every session of the user ends."""
    user = _user_of(uid)
    if user is None or not default_token_generator.check_token(user, token):
        raise ResetLinkInvalid()
    users.set_new_password(user, new_password)
    with transaction.atomic():
        user.save(update_fields=["password"])
        security_events.record(kind=security_events.Kind.PASSWORD_CHANGED, user=user,
                               ip_address=ip_address, by="reset link")
        # The new fingerprint already refuses every earlier token; this removes them.
        transaction.on_commit(lambda: end_sessions_of_old_passwords(user=user),
                              robust=True)


def _user_of(uid: str) -> AbstractBaseUser | None:
    try:
        user_id = force_str(urlsafe_base64_decode(uid))
    except (ValueError, UnicodeDecodeError):
        return None
    user = users.user_by_id(user_id)
    return user if user is not None and user.is_active else None


def _delivery_refusal() -> str | None:
    problem = reset_url_problem(token_settings.PASSWORD_RESET_URL)
    if problem is not None:
        return problem  # never a link on the requesting Host: it is the client's to choose
    kind = email_backend_kind()
    if kind is EmailBackendKind.NOTHING:
        return f"EMAIL_BACKEND ({settings.EMAIL_BACKEND}) sends nothing"
    if kind is EmailBackendKind.WRITES and not settings.DEBUG:
        return (f"EMAIL_BACKEND ({settings.EMAIL_BACKEND}) would write the link to the "
                "console or a file, and DEBUG is off")
    return None


def _send(user: AbstractBaseUser) -> None:
    link = reset_link(user)
    site = "{0.scheme}://{0.netloc}".format(urlsplit(link))  # the configured origin
    context = {"user": user, "link": link, "site": site, "timeout_hours": _hours()}
    subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
    email = getattr(user, user.get_email_field_name())
    send_mail(subject, render_to_string(BODY_TEMPLATE, context), None, [email])


def _hours() -> int:
    return max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
