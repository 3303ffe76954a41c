"""Settings for the token service.

Every deploy-specific value comes from the environment (see README, "Configuration").
This module is complete on its own: a module that does ``from config.settings import *``
and redefines ``TOKENS`` or ``CACHES`` is a valid settings module too.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_flag("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (50+ random characters), "
            "or set DJANGO_DEBUG=1 for local development only."
        )
    SECRET_KEY = "django-insecure-local-development-key-never-use-in-production-0123456789"

# Retired keys that still verify (comma-separated): how SECRET_KEY is rotated without
# logging anyone out (README, "Rotating keys").
SECRET_KEY_FALLBACKS = [
    key.strip() for key in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",")
    if key.strip()
]

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "tokens.apps.AdminConfig",  # django.contrib.admin, its logins within the limits
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "tokens",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files; see "Static files" below
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database under several workers. WAL: readers never wait for the writer,
    # and a commit appends to the log instead of waiting on the disk (NORMAL is durable
    # across a process crash; a power cut may lose the last commits, never corrupt). A
    # writer waits up to `timeout` seconds for another instead of failing with "database is
    # locked", and a transaction takes the write lock when it begins (IMMEDIATE), so one that
    # read first is never refused on its first write.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "timeout": 10,
        "transaction_mode": "IMMEDIATE",
        **DATABASES["default"].get("OPTIONS", {}),
    }

AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Static files: `collectstatic` copies them to STATIC_ROOT under names carrying a hash of
# their content, with gzip variants beside them; WhiteNoise serves them from gunicorn, the
# hashed names with a ten-year immutable cache header. Without DEBUG, a page whose static
# file was not collected is a 500: run `collectstatic` before starting (`make serve` does).
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "var" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The token store. Refresh sessions live here and nowhere else; the `tokens` system
# checks refuse a cache that would lose them silently (LocMem, Dummy, IGNORE_EXCEPTIONS).
# Short socket timeouts and a single immediate retry: a dead or hung Redis fails a
# request in about a second (503), instead of hanging a worker through redis-py's
# default exponential back-off.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TIMEOUT = float(os.environ.get("REDIS_TIMEOUT", "0.5"))

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # JSON, not pickle: whoever can write to Redis must not be able to run code here.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_TIMEOUT,
            "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
        },
    }
}


def host_and_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"{entry.strip()!r} in REDIS_SENTINELS is not host:port.")
    return host.strip("[]"), int(port)  # [::1]:26379 is IPv6


def sentinel_cache(cache: dict, *, service: str, sentinels: list[tuple[str, int]]) -> dict:
    """`cache` (a django-redis cache) reaching the primary of `service` through `sentinels`."""
    options = cache["OPTIONS"]
    return {**cache, "LOCATION": f"redis://{service}/0", "OPTIONS": {
        **options,
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
        "SENTINELS": sentinels,
        # Each Sentinel asked once, with the Redis timeouts: redis-py's default for them
        # (three retries with back-off) made a request wait 7 s for its 503 when none answered.
        "SENTINEL_KWARGS": {"socket_timeout": options.get("SOCKET_TIMEOUT"),
                            "socket_connect_timeout": options.get("SOCKET_CONNECT_TIMEOUT"),
                            "retry": Retry(NoBackoff(), 0)},
    }}


# High availability (README, "High availability"): with REDIS_SENTINELS (host:port,...) the
# token cache asks those Sentinels where the primary of REDIS_SENTINEL_SERVICE is, and
# REDIS_URL is not used. The store reads and writes on the primary only (never a replica,
# which may lag behind a rotation); a failover is a 503 for the seconds it takes.
REDIS_SENTINELS = [
    host_and_port(entry)
    for entry in os.environ.get("REDIS_SENTINELS", "").split(",") if entry.strip()
]
REDIS_SENTINEL_SERVICE = os.environ.get("REDIS_SENTINEL_SERVICE", "")
if REDIS_SENTINELS:
    if not REDIS_SENTINEL_SERVICE:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS is set but REDIS_SENTINEL_SERVICE is not: set it to the name "
            "the Sentinels monitor the token Redis under (`sentinel monitor <name> ...`)."
        )
    CACHES["default"] = sentinel_cache(CACHES["default"], service=REDIS_SENTINEL_SERVICE,
                                       sentinels=REDIS_SENTINELS)

TOKENS = {
    # Every key is optional; see tokens/conf.py for the defaults.
    # Prometheus metrics (README, "Metrics"): counted unless DJANGO_METRICS=0; /metrics is
    # served only to these addresses or networks (comma-separated), or to a scraper
    # presenting this secret as a Bearer token; with neither, /metrics is a 404.
    "METRICS": env_flag("DJANGO_METRICS", True),
    "METRICS_ALLOWED_IPS": [
        entry.strip() for entry in os.environ.get("DJANGO_METRICS_ALLOWED_IPS", "").split(",")
        if entry.strip()
    ],
    "METRICS_BEARER_TOKEN": os.environ.get("DJANGO_METRICS_BEARER_TOKEN") or None,
    # The link in password reset emails: the frontend's reset page, with {uid} and {token}
    # (README, "Password reset"). In development (`make run`), the demo page this server
    # serves, which carries them in the fragment, so no request (and no log) holds them.
    "PASSWORD_RESET_URL": os.environ.get("DJANGO_PASSWORD_RESET_URL") or (
        "http://127.0.0.1:8000/demo/#reset={uid}/{token}" if DEBUG else None),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tokens.api.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tokens.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tokens.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of the API that append to X-Forwarded-For. 0 (default): the client
    # address is REMOTE_ADDR and the header is ignored, so it cannot dodge the login
    # throttle per IP. Behind one load balancer, set DJANGO_NUM_PROXIES=1.
    "NUM_PROXIES": int(os.environ.get("DJANGO_NUM_PROXIES", "0")),
}

# CORS, for a frontend on another origin: none by default (same origin needs none). Only
# under /api/, with credentials (the cookie mode's cookie) only for these origins.
CORS_ALLOWED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CORS_ALLOWED_ORIGINS", "").split(",")
    if origin.strip()
]
# The site's own origin(s) as browsers see them, when a proxy rewrites Host (the cookie
# endpoints compare Origin with them; Django's admin CSRF check uses them too).
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key", "x-requested-with"]
CORS_EXPOSE_HEADERS = ["Retry-After"]

SPECTACULAR_SETTINGS = {
    "TITLE": "Token service API",
    "DESCRIPTION": "Login, rotating refresh tokens and session management.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# HTTPS-only settings, off by default so `make run` and the tests work over plain
# http on loopback. `manage.py check --deploy` reminds production deployments.
if env_flag("DJANGO_HTTPS"):
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Email (password reset links): SMTP from the environment; without it, the console in
# development only. With DEBUG off a reset link must never reach a log, so without SMTP no
# email is sent at all (the dummy backend: tokens.W020 at check time, an error logged for
# each reset request).
if os.environ.get("DJANGO_EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["DJANGO_EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_flag("DJANGO_EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 10
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "webmaster@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "tokens": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
