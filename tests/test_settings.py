"""config.settings: environment-driven, safe by default, and extensible with `import *`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, settings: str = "config.settings", **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update({"DJANGO_SETTINGS_MODULE": settings, **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_a_secret_key_outside_debug():
    result = run_python("import django; django.setup()")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_gets_a_development_key():
    result = run_python("import django; django.setup(); from django.conf import settings; "
                        "print(bool(settings.SECRET_KEY))", DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_environment_configures_redis_database_and_hosts():
    result = run_python(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CACHES['default']['LOCATION'], s.DATABASES['default']['NAME'], "
        "s.ALLOWED_HOSTS, s.DEBUG)",
        DJANGO_SECRET_KEY="x" * 50, REDIS_URL="redis://10.0.0.9:6380/2",
        DATABASE_URL="sqlite:////tmp/tokens-other.sqlite3", DJANGO_ALLOWED_HOSTS="api.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://10.0.0.9:6380/2", "/tmp/tokens-other.sqlite3",
                                     "['api.example.com']", "False"]


def test_https_settings_are_one_switch():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)")
    off = run_python(code, DJANGO_SECRET_KEY="x" * 50)
    on = run_python(code, DJANGO_SECRET_KEY="x" * 50, DJANGO_HTTPS="1")
    assert off.stdout.split() == ["False", "False", "False"]
    assert on.stdout.split() == ["True", "True", "True"]


def test_a_module_extending_the_settings_with_import_star_works():
    # tests/settings.py is exactly such a module; check it runs the project's checks clean.
    result = run_python(
        "import django; django.setup(); from django.core.management import call_command; "
        "from django.conf import settings; print(settings.PASSWORD_HASHERS[0]); "
        "call_command('check')",
        settings="tests.settings",
    )
    assert result.returncode == 0, result.stderr
    assert "MD5PasswordHasher" in result.stdout


def test_redis_sentinels_switch_the_token_cache_to_sentinel():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "o = s.CACHES['default']['OPTIONS']; print(s.CACHES['default']['LOCATION'], "
            "o['CLIENT_CLASS'], o['CONNECTION_FACTORY'], o['SENTINELS'], o['SERIALIZER'])")
    result = run_python(code, DJANGO_SECRET_KEY="x" * 50, REDIS_URL="redis://10.0.0.9:6380/2",
                        REDIS_SENTINELS="10.0.0.1:26379, [fd00::2]:26380",
                        REDIS_SENTINEL_SERVICE="tokens")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 3)[:3] == [
        "redis://tokens/0", "django_redis.client.SentinelClient",
        "django_redis.pool.SentinelConnectionFactory"]
    assert "[('10.0.0.1', 26379), ('fd00::2', 26380)]" in result.stdout
    assert "JSONSerializer" in result.stdout  # the rest of the cache's options kept


def test_redis_sentinels_without_a_service_or_a_port_are_refused():
    for env in ({"REDIS_SENTINELS": "10.0.0.1:26379"},
                {"REDIS_SENTINELS": "10.0.0.1", "REDIS_SENTINEL_SERVICE": "tokens"}):
        result = run_python("import django; django.setup()", DJANGO_SECRET_KEY="x" * 50, **env)
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr


def test_the_embedded_database_is_set_for_concurrent_workers(tmp_path):
    # WAL (readers never wait for a writer, commits do not wait on the disk), a busy timeout
    # (a writer waits for another instead of failing with "database is locked") and
    # transactions that take the write lock when they begin.
    result = run_python(
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); "
        "print(*(cursor.execute(f'PRAGMA {name}').fetchone()[0] "
        "for name in ('journal_mode', 'synchronous', 'busy_timeout')), "
        "connection.transaction_mode)",
        DJANGO_SECRET_KEY="x" * 50, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "1", "10000", "IMMEDIATE"]  # 1: NORMAL


def test_postgresql_gets_none_of_the_sqlite_options():
    result = run_python(
        # The settings module alone: no PostgreSQL driver is installed here.
        "import config.settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default'].get('OPTIONS', {}))",
        DJANGO_SECRET_KEY="x" * 50, DATABASE_URL="postgres://u:p@db.example.com:5432/tokens",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "{}"]


def run_check(**env) -> subprocess.CompletedProcess:
    """`manage.py check` on config.settings as shipped, in this environment."""
    return run_python("from django.core.management import execute_from_command_line; "
                      "execute_from_command_line(['manage.py', 'check'])",
                      DJANGO_SECRET_KEY="x" * 50, **env)


def test_without_smtp_and_debug_no_reset_email_is_sent_and_check_says_so():
    # `make serve` without DJANGO_EMAIL_HOST: never the console, where links would be logged.
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert "tokens.W020" in result.stderr and "tokens.W021" in result.stderr
    values = run_python("import django; django.setup(); from django.conf import settings as s; "
                        "print(s.EMAIL_BACKEND, s.TOKENS['PASSWORD_RESET_URL'])",
                        DJANGO_SECRET_KEY="x" * 50)
    assert values.stdout.split() == ["django.core.mail.backends.dummy.EmailBackend", "None"]


def test_with_debug_reset_links_point_at_the_demo_page_and_go_to_the_console():
    values = run_python("import django; django.setup(); from django.conf import settings as s; "
                        "print(s.EMAIL_BACKEND, s.TOKENS['PASSWORD_RESET_URL'])",
                        DJANGO_DEBUG="1")
    assert values.stdout.split() == ["django.core.mail.backends.console.EmailBackend",
                                     "http://127.0.0.1:8000/demo/#reset={uid}/{token}"]
    result = run_check(DJANGO_DEBUG="1")
    assert result.returncode == 0 and "tokens.W02" not in result.stderr, result.stderr


def test_smtp_and_a_reset_url_from_the_environment_pass_and_a_relative_url_is_refused():
    smtp = {"DJANGO_EMAIL_HOST": "smtp.example.test"}
    good = run_check(DJANGO_PASSWORD_RESET_URL="https://app.example.test/reset#{uid}/{token}",
                     **smtp)
    assert good.returncode == 0 and "tokens." not in good.stderr, good.stderr
    relative = run_check(DJANGO_PASSWORD_RESET_URL="/reset/{uid}/{token}", **smtp)
    assert relative.returncode != 0 and "tokens.E020" in relative.stderr


# Preflights, and a request's answer (a 400: no store needed), as each origin sees them.
CORS_PROBE = """
import json
import django
django.setup()
from django.test import Client
HEADERS = "authorization,content-type,idempotency-key,x-requested-with"
seen = {}
for origin in ("https://app.example.com", "https://other.example.com", "https://evil.example"):
    client = Client(HTTP_ORIGIN=origin)
    preflight = client.options("/api/auth/cookie/refresh/",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS=HEADERS)
    answer = client.post("/api/auth/token/", {}, content_type="application/json")
    seen[origin] = [{k.lower(): v for k, v in r.headers.items()
                     if k.lower().startswith("access-control-")}
                    for r in (preflight, answer)] + [answer.status_code]
print(json.dumps(seen))
"""


def test_listed_origins_may_send_the_apis_headers_and_read_retry_after_and_no_other_may(
        tmp_path):
    result = run_python(CORS_PROBE, DJANGO_SECRET_KEY="x" * 50,
                        DJANGO_ALLOWED_HOSTS="testserver",
                        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                        DJANGO_CORS_ALLOWED_ORIGINS=(
                            "https://app.example.com , https://other.example.com"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    for origin in ("https://app.example.com", "https://other.example.com"):
        preflight, answer, status = seen[origin]
        assert status == 400
        for headers in (preflight, answer):
            assert headers["access-control-allow-origin"] == origin
            assert headers["access-control-allow-credentials"] == "true"
        allowed = {name.strip().lower() for name in
                   preflight["access-control-allow-headers"].split(",")}
        assert allowed == {"authorization", "content-type", "idempotency-key", "x-requested-with"}
        assert "POST" in preflight["access-control-allow-methods"]
        exposed = {name.strip().lower() for name in
                   answer["access-control-expose-headers"].split(",")}
        assert exposed == {"retry-after"}
    assert seen["https://evil.example"] == [{}, {}, 400]
