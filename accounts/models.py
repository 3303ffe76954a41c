from django.contrib.auth.models import AbstractUser

from tokens.base_user import SessionsSurviveRehash


class User(SessionsSurviveRehash, AbstractUser):
    """The project's user; a custom model from day one so it can grow without a migration dance."""
