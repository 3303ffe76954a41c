"""Login-limit budgets: one sorted set of attempt ids per budget (see lua/reserve.lua)."""

from dataclasses import dataclass

from tokens.store import scripts
from tokens.store.connection import connection, text
from tokens.store.keys import throttle_key


@dataclass(frozen=True)
class Budget:
    """A login limit as the store counts it: `limit` attempts of `ident` per window; a
    `held` budget counts an attempt before its password is checked (see lua/reserve.lua)."""

    scope: str
    ident: str
    limit: int
    window_seconds: int
    held: bool = True


def reserve_login_attempt(*, budgets: list[Budget], attempt: str, now_ms: int) -> float | None:
    """If every budget has room, hold `attempt` against the held ones, atomically, and
    return None; else count nothing and return the seconds until all have room."""
    args: list = [now_ms, attempt]
    for budget in budgets:
        args += [budget.limit, budget.window_seconds * 1000, int(budget.held)]
    with connection() as (conn, key):
        keys = [throttle_key(key, b.scope, b.ident) for b in budgets]
        wait_ms = text(scripts.RESERVE(keys=keys, args=args, client=conn))
    return max(int(wait_ms) / 1000, 0.001) if wait_ms else None


def record_login_failure(*, budgets: list[Budget], attempt: str, now_ms: int) -> None:
    """Count a failed password check against budgets that were not held for it."""
    with connection() as (conn, key):
        pipe = conn.pipeline(transaction=True)
        for budget in budgets:
            budget_key = throttle_key(key, budget.scope, budget.ident)
            pipe.zadd(budget_key, {attempt: now_ms})
            pipe.pexpire(budget_key, budget.window_seconds * 1000)
        pipe.execute()


def release_login_attempt(*, budgets: list[Budget], attempt: str) -> None:
    """Uncount an attempt that turned out to be a correct password (or never ran)."""
    with connection() as (conn, key):
        pipe = conn.pipeline(transaction=False)
        for budget in budgets:
            pipe.zrem(throttle_key(key, budget.scope, budget.ident), attempt)
        pipe.execute()
