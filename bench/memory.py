"""Redis memory per live session: MEMORY USAGE of one session's keys, and the used_memory
delta over 10,000 sessions (each of its own user, so each with its own index key)."""

import json

import django

django.setup()

from django_redis import get_redis_connection  # noqa: E402

from tokens import store  # noqa: E402

SESSIONS = 10_000
conn = get_redis_connection("default")


def create(i: int) -> None:
    store.create_session(
        user_id=f"m{i}", session_id=f"session-{i:022d}", jti=f"jti-{i:022d}", generation=1,
        fingerprint="0123456789abcdef", now_ms=1_800_000_000_000, expires_at=1_802_592_000,
        absolute_expires_at=1_807_776_000,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        ip_address="203.0.113.7",
    )


conn.flushall()
before = conn.info("memory")["used_memory"]
for i in range(SESSIONS):
    create(i)
after = conn.info("memory")["used_memory"]
keys = [k for k in conn.scan_iter(match="*{m0}*")]
one = {k.decode(): conn.memory_usage(k, samples=0) for k in keys}
conn.flushall()
print(json.dumps({
    "sessions": SESSIONS,
    "used_memory_delta_per_session": round((after - before) / SESSIONS, 1),
    "memory_usage_one_session": one,
    "memory_usage_one_session_total": sum(one.values()),
}))
