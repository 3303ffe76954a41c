"""The values that travel between the app's layers; imports nothing of the app."""

from dataclasses import dataclass
from enum import StrEnum


class EndReason(StrEnum):
    """Why a session ended. There is no "expired": Redis drops an expired session silently,
    when its TTL runs out, and no process is there to see it happen."""

    LOGOUT = "logout"  # the user ended it (logout, or DELETE of one of their sessions)
    LOGOUT_ALL = "logout_all"
    REUSE = "reuse"
    PASSWORD_CHANGE = "password_change"
    ADMIN = "admin"
    COMMAND = "command"
    USER_DEACTIVATED = "user_deactivated"
    USER_DELETED = "user_deleted"


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from: recorded on the session (user agent, address) and
    counted by the login limits (address, device cookies)."""

    user_agent: str = ""
    ip_address: str = ""
    device_cookies: tuple[str, ...] = ()  # every one presented: junk may come with the real


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True)
class Login:
    pair: TokenPair
    device_cookie: str  # for the client to keep: its own budget of failures next time


@dataclass(frozen=True)
class KeyUsage:
    """The keys in force, and how many stored sessions each fingerprint key still stamps."""

    algorithm: str
    current_kid: str
    fallback_kids: tuple[str, ...]
    stamped: tuple[int, ...]  # sessions per fingerprint key: current first, then fallbacks
    unknown: int  # sessions no key recognises (dead: purge_tokens removes them)
