"""The peer: a minimal project on djangorestframework-simplejwt with its token blacklist,
on the same database settings (SQLite from DATABASE_URL, in WAL), server and client settings."""

import os
from datetime import timedelta

from config.settings import DATABASES as PROJECT_DATABASES
from config.settings import MIDDLEWARE as PROJECT_MIDDLEWARE

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
]
# The project's own middleware (Django's stack for a project with an admin), so that `ping`
# is the same framework ceiling for both and the difference is the token library.
MIDDLEWARE = PROJECT_MIDDLEWARE
ROOT_URLCONF = "bench.peer.urls"
# The project's database settings (WAL, busy timeout): the difference is the token library.
DATABASES = PROJECT_DATABASES
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
if os.environ.get("BENCH_FAST_HASHER") == "1":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SIMPLE_JWT = {
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),  # as ours; the access lifetime is 5 min in both
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,  # as the project does on login
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
