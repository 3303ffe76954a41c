"""The project's own settings, plus a bare `ping` view, switched by the benchmark's environment."""

import os
from datetime import timedelta

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
TOKENS = {
    "CHECK_SESSION_ON_ACCESS": os.environ.get("BENCH_SESSION_CHECK", "1") == "1",
    "ACCESS_TOKEN_LIFETIME": timedelta(hours=1),  # outlives a benchmark run
    # The client is one machine at full speed; login throttling is measured in the tests.
    "LOGIN_FAILURES_PER_USERNAME": None,
    "LOGIN_FAILURES_PER_IP": None,
    "LOGIN_FAILURES_PER_DEVICE": None,
}
if os.environ.get("BENCH_FAST_HASHER") == "1":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
