"""What the token commands share: user lookup, and domain errors as one-line CommandErrors."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError

from tokens.exceptions import TokenServiceError


class TokenCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except TokenServiceError as exc:
            raise CommandError(str(exc)) from exc

    def get_user(self, username: str) -> AbstractBaseUser:
        User = get_user_model()
        try:
            return User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
