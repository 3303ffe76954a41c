"""The host's user by multi-table inheritance: Member's own table holds only its own field
and the link to Person's row, which holds everything AbstractUser defines."""

from django.contrib.auth.models import AbstractUser
from django.db import models

from tokens.base_user import SessionsSurviveRehash


class Person(AbstractUser):
    pass


class Member(SessionsSurviveRehash, Person):
    nickname = models.CharField(max_length=50, blank=True)
