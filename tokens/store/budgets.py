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


@dataclass(frozen=True)
class Refusal:
    """Why an attempt was not counted: the seconds until every budget has room, and the
    scopes of the budgets that are full."""

    wait: float
    scopes: tuple[str, ...]


def reserve_login_attempt(*, budgets: list[Budget], attempt: str, now_ms: int
                          ) -> Refusal | None:
    """If every budget has room, hold `attempt` against the held ones, atomically, and
    return None; else count nothing and say why (a Refusal)."""
    args: list = [now_ms, attempt]
    for budget in budgets:
        args += [budget.limit, budget.window_seconds * 1000, int(budget.held)]
    with connection("limit_reserve") as (conn, key):
        keys = [throttle_key(key, b.scope, b.ident) for b in budgets]
        reply = text(scripts.RESERVE(keys=keys, args=args, client=conn))
    if not reply:
        return None
    wait_ms, *full = reply.split()
    return Refusal(max(int(wait_ms) / 1000, 0.001),
                   tuple(budgets[int(i) - 1].scope for i in full))


def first_lockout(*, ident: str, window_seconds: int, now_ms: int) -> bool:
    """Whether this is the first refusal by the username budget of `ident` in this window
    (windows of `window_seconds` counted from the epoch, so at most one per window): one
    atomic SET NX, so that however many refusals race, one is first."""
    window_ms = window_seconds * 1000
    mark = f"{ident}:{now_ms // window_ms}"
    with connection("lockout") as (conn, key):
        return bool(conn.set(throttle_key(key, "lockout", mark), 1, nx=True, px=window_ms))


def record_login_failure(*, budgets: list[Budget], attempt: str, now_ms: int) -> None:
    """Count a failed password check against budgets that were not held for it."""
    with connection("limit_record") as (conn, key):
        pipe = conn.pipeline(transaction=True)
        for budget in budgets:
            budget_key = throttle_key(key, budget.scope, budget.ident)
            pipe.zadd(budget_key, {attempt: now_ms})
            pipe.pexpire(budget_key, budget.window_seconds * 1000)
        pipe.execute()


def release_login_attempt(*, budgets: list[Budget], attempt: str) -> None:
    """Uncount an attempt that turned out to be a correct password (or never ran)."""
    with connection("limit_release") as (conn, key):
        pipe = conn.pipeline(transaction=False)
        for budget in budgets:
            pipe.zrem(throttle_key(key, budget.scope, budget.ident), attempt)
        pipe.execute()
