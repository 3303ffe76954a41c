"""Settings for the API servers the system tests start: the project's own settings (Redis from
REDIS_URL, database from DATABASE_URL), with the tests' fast password hasher.

Test-only switches, read from the environment of one server (never set in production):
- TOKENS_TEST_HASHER="django": Django's own hasher (PBKDF2) instead of the fast one.
- TOKENS_LEEWAY: ROTATION_LEEWAY in seconds (10, the default, unless told).
- TOKENS_LOGIN_LIMITS="off": no login or reset limits (a fuzzing run reaches every password
  check; the reset timing benchmark sends many requests).
- TOKENS_ACCESS_SECONDS: ACCESS_TOKEN_LIFETIME in seconds (browser tests: a few seconds).
- TOKENS_DEMO_PAGE="on": the demo page at /demo/, its static files served by WhiteNoise
  straight from the apps' static/ folders, with no `collectstatic` (tests/browser).
- TOKENS_TEST_SILENT_STORE: a token cache that would lose tokens silently, with the system
  checks that refuse it silenced, to show the store's runtime guard (test_guard.py).
"""

import os
from datetime import timedelta

from config.settings import *  # noqa: F403
from config.settings import CACHES as PROJECT_CACHES
from config.settings import STORAGES as PROJECT_STORAGES
from config.settings import TOKENS as PROJECT_TOKENS

if os.environ.get("TOKENS_TEST_HASHER") != "django":  # "django": Django's own, PBKDF2
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = PROJECT_CACHES
# No `collectstatic` for these servers: the plain storage renders pages (the docs page) without
# one. test_serving.py runs config.settings itself, with the production storage.
STORAGES = {**PROJECT_STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
TOKENS = {**PROJECT_TOKENS,
          "ROTATION_LEEWAY": timedelta(seconds=float(os.environ.get("TOKENS_LEEWAY", "10")))}
if os.environ.get("TOKENS_ACCESS_SECONDS"):
    TOKENS["ACCESS_TOKEN_LIFETIME"] = timedelta(seconds=float(os.environ["TOKENS_ACCESS_SECONDS"]))
TOKENS["DEMO_PAGE"] = WHITENOISE_USE_FINDERS = os.environ.get("TOKENS_DEMO_PAGE") == "on"

if os.environ.get("TOKENS_LOGIN_LIMITS") == "off":
    TOKENS |= dict.fromkeys(
        ["LOGIN_FAILURES_PER_USERNAME", "LOGIN_FAILURES_PER_IP", "LOGIN_FAILURES_PER_DEVICE",
         "PASSWORD_RESETS_PER_EMAIL", "PASSWORD_RESETS_PER_IP"])

_REDIS = PROJECT_CACHES["default"]
SILENT_STORES = {
    "locmem": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    "dummy": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
    # The real Redis, with its errors ignored: what it stores (nothing, if refused) is seen.
    "ignore-exceptions": {"default": {
        **_REDIS, "OPTIONS": {**_REDIS["OPTIONS"], "IGNORE_EXCEPTIONS": True}}},
    "global-ignore-exceptions": PROJECT_CACHES,  # with DJANGO_REDIS_IGNORE_EXCEPTIONS below
    "missing-alias": PROJECT_CACHES,  # with a CACHE_ALIAS that is not in it, below
}
_silent = os.environ.get("TOKENS_TEST_SILENT_STORE")
if _silent:
    CACHES = SILENT_STORES[_silent]
    DJANGO_REDIS_IGNORE_EXCEPTIONS = _silent == "global-ignore-exceptions"
    if _silent == "missing-alias":
        TOKENS["CACHE_ALIAS"] = "tokens"
    # The checks that refuse each of these at `manage.py check`: only the guard is left.
    SILENCED_SYSTEM_CHECKS = ["tokens.E001", "tokens.E002", "tokens.E003", "tokens.E004"]
