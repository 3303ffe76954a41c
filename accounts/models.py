from django.contrib.auth.models import AbstractUser

from tokens.models import SessionsSurviveRehash


class User(SessionsSurviveRehash, AbstractUser):
    """The project's user; a custom model from day one so it can grow without a migration dance."""
