

# ---- Added to the generated settings by tests/host: the host's own choices, and what the
# README's "Add it to your project" asks for. ----
import os  # noqa: E402
from datetime import timedelta  # noqa: E402

DEBUG = False
SECRET_KEY = os.environ["HOST_SECRET_KEY"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
TIME_ZONE = "Europe/Paris"

INSTALLED_APPS += ["rest_framework", "tokens", "people"]  # noqa: F821
INSTALLED_APPS += os.environ.get("HOST_EXTRA_APPS", "").split()  # noqa: F821

if os.environ.get("HOST_DATABASE") == "postgresql":
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["HOST_DB_NAME"],
        "USER": "postgres", "HOST": "127.0.0.1", "PORT": os.environ["HOST_DB_PORT"],
    }}

# The host's own cache stays in memory; the tokens get a django-redis cache of their own.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "tokens": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("HOST_REDIS_URL", "redis://127.0.0.1:1/0"),
        "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
    },
}
if os.environ.get("HOST_TOKEN_CACHE") == "locmem":
    CACHES["tokens"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}

TOKENS = {
    "CACHE_ALIAS": "tokens",
    "ROTATION_LEEWAY": timedelta(0),  # any replay of a spent refresh token is reuse
    "METRICS_ALLOWED_IPS": ["127.0.0.1"],
    "PASSWORD_RESET_URL": "https://app.example.test/reset#{uid}/{token}",
}

# The host's DRF defaults, none of them the app's: they must change nothing of its endpoints.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "5/hour"},
    "DATETIME_FORMAT": "%d/%m/%Y %H:%M",
    "COMPACT_JSON": False,
    "UNICODE_JSON": False,
    "EXCEPTION_HANDLER": "people.views.host_exception_handler",
}
if "drf_spectacular" in INSTALLED_APPS:  # noqa: F821
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"

if os.environ.get("HOST_HTTPS"):  # production, behind a TLS proxy
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# A server error's traceback on stderr (the test shows the server's log when it fails).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"},
                "tokens": {"handlers": ["stderr"], "level": "WARNING"}},
}
