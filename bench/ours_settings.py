"""The project's settings as shipped, plus a bare `ping` view, and only what bench/run.py's
CHANGES lists, switched by the benchmark's environment."""

import os

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"  # the project's URLs, and `ping`
if os.environ.get("BENCH_SESSION_CHECK") == "0":  # `me (session check off)`, for comparison
    TOKENS = {**TOKENS, "CHECK_SESSION_ON_ACCESS": False}  # noqa: F405
if os.environ.get("BENCH_REPLICA_ACKS") == "1":  # `refresh (REPLICA_ACKS=1, ...)`, likewise
    TOKENS = {**TOKENS, "REPLICA_ACKS": 1}  # noqa: F405
if os.environ.get("BENCH_FAST_HASHER") == "1":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
