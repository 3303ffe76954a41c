"""Lifecycle hooks: a deleted or deactivated user's sessions end. Receivers only call services.

They run after the transaction commits (a rolled-back change ends nothing). Should Redis be
down then, the failure is logged and the sessions are refused anyway (the user is gone or
inactive); `manage.py purge_tokens` removes what is left.
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tokens.services.sessions import revoke_all_sessions
from tokens.types import EndReason


def _end_sessions_after_commit(user_id: object, reason: EndReason) -> None:
    transaction.on_commit(
        lambda: revoke_all_sessions(user_id=user_id, reason=reason), robust=True)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_deleted_user(sender, instance, **kwargs) -> None:
    _end_sessions_after_commit(instance.pk, EndReason.USER_DELETED)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_deactivated_user(sender, instance, created, **kwargs) -> None:
    if not created and not instance.is_active:
        _end_sessions_after_commit(instance.pk, EndReason.USER_DEACTIVATED)
