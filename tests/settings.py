"""Test settings: the project's own settings, plus what only tests want."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-insecure-secret-key-that-is-long-enough-0123456789")

from config.settings import *  # noqa: E402,F403
from config.settings import CACHES, DATABASES, LOGGING, STORAGES, TOKENS  # noqa: E402

# Fast hashing: the token logic is under test, not PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Pages render without a `collectstatic` run: the manifest storage would refuse every static
# file it has no hashed name for, and WhiteNoise would warn that STATIC_ROOT is missing.
# tests/system/test_serving.py runs the production storage.
STORAGES = {**STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_AUTOREFRESH = True

# The test database in a file, as served (WAL, busy timeout), not SQLite's in-memory shared
# cache: there a transaction locks the table for every other connection and no busy timeout
# applies, so a test racing two requests could fail with "database table is locked".
# Django removes the file when the tests end.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES = {"default": {**DATABASES["default"], "TEST": {
        "NAME": os.path.join(tempfile.gettempdir(), f"tokens-tests-{os.getpid()}.sqlite3")}}}

# Never a developer's Redis: the `redis_server` fixture points this at the Redis the
# tests start. Port 1 refuses connections if anything ran before that fixture.
CACHES = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}

# The `tokens` logger keeps to its own handler in production (propagate off). Here it hands
# its records to the root logger instead, where caplog listens: log assertions then do not
# depend on pytest also listening on non-propagating loggers (only pytest >= 9.2 does).
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "tokens": {
    **LOGGING["loggers"]["tokens"], "handlers": [], "propagate": True}}}

# Reset links to a frontend on another host, uid and token in the fragment (README,
# "Password reset"); the project's settings have none with DEBUG off.
TOKENS = {**TOKENS, "PASSWORD_RESET_URL": "https://app.example.test/reset#{uid}/{token}"}
