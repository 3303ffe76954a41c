"""Settings for the API servers the system tests start: the project's own settings (Redis from
REDIS_URL, database from DATABASE_URL), with the tests' fast password hasher."""

import os
from datetime import timedelta

from config.settings import *  # noqa: F403
from config.settings import CACHES as PROJECT_CACHES

if os.environ.get("TOKENS_TEST_HASHER") != "django":  # "django": Django's own, PBKDF2
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = PROJECT_CACHES
TOKENS = {"ROTATION_LEEWAY": timedelta(seconds=float(os.environ.get("TOKENS_LEEWAY", "10")))}
