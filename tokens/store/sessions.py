"""One session: one login, one family of refresh tokens, as a Redis hash, listed in its
user's index (a set of session ids). The atomic rules are the Lua scripts in `lua/`.

The hash's fields, written by the scripts (short, as Redis keeps them in every session):
`uid` user id, `gen` generation (moved on by a password change), `fp` fingerprint of the
password hash it was born with, `fpx` fingerprints of re-hashes of that password, `cur`
current refresh token id, `prev` the one spent before it, `rot` when `cur` was issued (ms),
`exp` and `abs` its idle and absolute ends (s), `created` and `last` (ms), `ua` and `ip`
of the last client, `ik` the rotation's Idempotency-Key (hash, bound to `prev`), `rk` the
keys racing tabs' replays recorded, `chg` the password change's retry mark."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tokens.store import scripts
from tokens.store.budgets import Budget
from tokens.store.connection import Written, connection, text, write
from tokens.store.keys import (
    abandoned_key,
    reuse_key,
    session_and_index,
    session_key,
    session_prefix,
    throttle_key,
)


# How long an abandoned login's mark stops its late write (see lua/abandon.lua).
ABANDONED_MARK_MS = 60_000


@dataclass(frozen=True)
class Rotation:
    """The result of presenting a refresh token: the successor token's id and times."""

    outcome: Literal["rotated", "replayed", "retried", "reused", "reused_before", "gone",
                     "stale"]
    jti: str = ""
    issued_at_ms: int = 0
    expires_at: int = 0


def create_session(
    *,
    user_id: str,
    session_id: str,
    jti: str,
    generation: int,
    fingerprint: str,
    now_ms: int,
    expires_at: int,
    absolute_expires_at: int,
    user_agent: str,
    ip_address: str,
    release: Sequence[Budget] = (),
    attempt: str = "",
) -> Written[None]:
    """Store a new session whose current refresh token is `jti`, alive until `expires_at`,
    and uncount login `attempt` from the `release` budgets (the login's, in the same trip)."""
    fields = {
        "uid": user_id, "gen": generation, "fp": fingerprint, "cur": jti, "prev": "",
        "rot": now_ms, "exp": expires_at, "abs": absolute_expires_at,
        "created": now_ms, "last": now_ms, "ua": user_agent, "ip": ip_address,
    }
    args = [session_id, expires_at * 1000 - now_ms, attempt]
    for name, value in fields.items():
        args += [name, value]
    with connection("create") as (conn, key):
        keys = [*session_and_index(key, user_id, session_id),
                abandoned_key(key, user_id, session_id)]
        keys += [throttle_key(key, budget.scope, budget.ident) for budget in release]
        return write(scripts.CREATE, conn, keys=keys, args=args, result=lambda reply: None)


def abandon_session(*, user_id: str, session_id: str) -> bool:
    """Remove a session whose login answered 503 after its write was sent, and stop that
    write if it is still to run (see lua/abandon.lua); True if it had been written."""
    with connection("abandon") as (conn, key):
        keys = [*session_and_index(key, user_id, session_id),
                abandoned_key(key, user_id, session_id)]
        args = [session_id, session_prefix(key, user_id), ABANDONED_MARK_MS]
        return bool(scripts.ABANDON(keys=keys, args=args, client=conn))


def rotate(
    *,
    user_id: str,
    session_id: str,
    jti: str,
    generation: int,
    fingerprint: str,
    new_jti: str,
    now_ms: int,
    idle_seconds: int,
    leeway_ms: int,
    ip_address: str,
    parent: str = "",
    idempotency_key: str = "",
    retry_window_ms: int = 0,
    older_fingerprints: tuple[str, ...] = (),
) -> Written[Rotation]:
    """Spend refresh token `jti` (child of `parent`) for `new_jti`, in one atomic step (see
    lua/rotate.lua); `idempotency_key` is the hash of the request's key, recorded with it."""
    args = [session_id, jti, generation, fingerprint, now_ms, leeway_ms, new_jti,
            idle_seconds, ip_address, parent, idempotency_key, retry_window_ms]
    with connection("rotate") as (conn, key):
        args += [session_prefix(key, user_id), " ".join(older_fingerprints)]
        keys = [*session_and_index(key, user_id, session_id),
                reuse_key(key, user_id, session_id)]
        return write(scripts.ROTATE, conn, keys=keys, args=args, result=_rotation)


def is_active(*, user_id: str, session_id: str, generation: int, fingerprint: str,
              older_fingerprints: tuple[str, ...] = ()) -> bool:
    """Whether the session exists, at this generation, for this password."""
    with connection("check") as (conn, key):
        gen, fp, fpx = conn.hmget(session_key(key, user_id, session_id), "gen", "fp", "fpx")
    return (gen is not None and int(gen) == generation
            and accepts_any(fp, fpx, (fingerprint, *older_fingerprints)))


def revoke(*, user_id: str, session_id: str) -> Written[bool]:
    """End one session; True if it was live."""
    with connection("revoke") as (conn, key):
        args = [session_id, session_prefix(key, user_id)]
        keys = session_and_index(key, user_id, session_id)
        return write(scripts.REVOKE, conn, keys=keys, args=args, result=bool)


def logout(*, user_id: str, session_id: str, jti: str, generation: int, parent: str,
           now_ms: int, leeway_ms: int) -> Written[str]:
    """End the session of refresh token `jti` (see lua/logout.lua): 'ended', or 'reused' if
    the token was spent before the leeway (the session ends all the same, as a reuse)."""
    args = [session_id, jti, generation, parent, now_ms, leeway_ms]
    with connection("logout") as (conn, key):
        args.append(session_prefix(key, user_id))
        keys = [*session_and_index(key, user_id, session_id),
                reuse_key(key, user_id, session_id)]
        return write(scripts.LOGOUT, conn, keys=keys, args=args, result=text)


def restart(
    *,
    user_id: str,
    session_id: str,
    generation: int,
    fingerprint: str,
    new_jti: str,
    now_ms: int,
    idle_seconds: int,
    idempotency_key: str = "",
    previous_fingerprint: str = "",
) -> Written[Rotation]:
    """Move a session from `generation` to the next, with `new_jti` as its only current
    refresh token and the new password's fingerprint, so that every other session (born
    with another) is refused from now on (see lua/restart.lua for a retry with
    `idempotency_key`, a hash, and `previous_fingerprint`); end_sessions then removes them."""
    with connection("restart") as (conn, key):
        keys = session_and_index(key, user_id, session_id)
        args = [session_id, generation, generation + 1, fingerprint, new_jti, now_ms,
                idle_seconds, idempotency_key, previous_fingerprint]
        return write(scripts.RESTART, conn, keys=keys, args=args, result=_rotation)


def is_change_retry(*, user_id: str, session_id: str, generation: int, idempotency_key: str
                    ) -> bool:
    """Whether the session left `generation` by a password change made with this key (a
    hash), and has not rotated since: a request repeating that change."""
    with connection("change_retry") as (conn, key):
        gen, mark = conn.hmget(session_key(key, user_id, session_id), "gen", "chg")
    return (gen is not None and int(gen) == generation + 1
            and text(mark) == f"{generation}:{idempotency_key}")


def accepts_any(fp: bytes | None, fpx: bytes | None, fingerprints: tuple[str, ...]) -> bool:
    """Whether a session accepts any of `fingerprints` (see lua/lib/accepts.lua)."""
    known = {text(fp), *text(fpx).split()} - {""}
    return any(fingerprint in known for fingerprint in fingerprints)


def _rotation(reply: list) -> Rotation:
    outcome, *rest = (text(item) for item in reply)
    if not rest:
        return Rotation(outcome)
    successor, issued_at_ms, expires_at = rest
    return Rotation(outcome, successor, int(issued_at_ms), int(expires_at))
