"""Forgotten passwords: a reset link by email, and the new password it sets.

Django does the hard parts: PasswordResetForm.get_users picks the active users with a
usable password for an address, default_token_generator makes and checks the one-time
token (it covers the password hash and last login, so a used link is dead), and the
password validators judge the new password.

No answer says whether an address has an account, by body or by timing: a request only
counts against the limits before its 202, and the lookup, the token and the email happen
after the response is sent (`deliver`, run by the view once the response is closed).
"""

import logging
from collections.abc import Callable

from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from tokens import login_limits, security_events, services, users
from tokens.hooks import EndReason
from tokens.conf import token_settings
from tokens.exceptions import ResetLinkInvalid

logger = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "tokens/password_reset_subject.txt"
BODY_TEMPLATE = "tokens/password_reset_email.txt"


def request_reset(*, email: str, ip_address: str, site: str) -> Callable[[], None]:
    """Count a reset request (raises ResetThrottled) and return the delivery, to run after
    the response: the same answer, in the same time, whether or not an account matches."""
    login_limits.count_reset_request(email=email, ip_address=ip_address)
    return lambda: deliver(email=email, site=site)


def deliver(*, email: str, site: str) -> int:
    """Email a reset link to each active user with this address; returns how many."""
    sent = 0
    for user in PasswordResetForm().get_users(email):
        try:
            _send(user, site)
            sent += 1
        except Exception as exc:  # after the response: nobody to tell but the log
            logger.error("Password reset email not sent (user=%s): %s", user.pk,
                         type(exc).__name__)
    return sent


def reset_link(user: AbstractBaseUser, site: str) -> str:
    """The one-time link: TOKENS['PASSWORD_RESET_URL'] with the user's uid and a token."""
    link = token_settings.PASSWORD_RESET_URL.format(
        uid=urlsafe_base64_encode(force_bytes(user.pk)),
        token=default_token_generator.make_token(user),
    )
    return site + link if link.startswith("/") else link


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
        transaction.on_commit(lambda: services.revoke_all_sessions(
            user_id=user.pk, reason=EndReason.PASSWORD_CHANGE), robust=True)


def _user_of(uid: str) -> AbstractBaseUser | None:
    try:
        user_id = force_str(urlsafe_base64_decode(uid))
    except (ValueError, UnicodeDecodeError):
        return None
    user = users.user_by_id(user_id)
    return user if user is not None and user.is_active else None


def _send(user: AbstractBaseUser, site: str) -> None:
    context = {"user": user, "link": reset_link(user, site), "site": site,
               "timeout_hours": _hours()}
    subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
    email = getattr(user, user.get_email_field_name())
    send_mail(subject, render_to_string(BODY_TEMPLATE, context), None, [email])


def _hours() -> int:
    from django.conf import settings

    return max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
