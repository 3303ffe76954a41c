"""Lifecycle hooks: a deleted or deactivated user's sessions end, and failed logins are
counted for throttling. Receivers only call services.

They run after the transaction commits (a rolled-back change ends nothing). Should Redis be
down then, the failure is logged and the sessions are refused anyway (the user is gone or
inactive); `manage.py purge_tokens` removes what is left.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from rest_framework.throttling import BaseThrottle

from tokens import login_limits, services
from tokens.exceptions import StoreUnavailable
from tokens.throttling import ATTEMPTS


def _end_sessions_after_commit(user_id: object) -> None:
    transaction.on_commit(lambda: services.revoke_all_sessions(user_id=user_id), robust=True)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_deleted_user(sender, instance, **kwargs) -> None:
    _end_sessions_after_commit(instance.pk)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_deactivated_user(sender, instance, created, **kwargs) -> None:
    if not created and not instance.is_active:
        _end_sessions_after_commit(instance.pk)


@receiver(user_login_failed)
def count_failed_login(sender, credentials, request=None, **kwargs) -> None:
    if request is not None and hasattr(request, ATTEMPTS):
        return  # the API's throttles counted this attempt already
    # Any other failed authenticate() with a request (the admin login) counts too.
    ip_address = BaseThrottle().get_ident(request) if request is not None else None
    try:
        login_limits.record_login_failure(username=credentials.get("username"),
                                      ip_address=ip_address)
    except StoreUnavailable:
        pass  # logged by the store; the login itself has failed and says so


@receiver(user_logged_in)
def uncount_successful_login(sender, request=None, **kwargs) -> None:
    login_limits.release_login_attempts(attempts=getattr(request, ATTEMPTS, []))
