"""Every key of the token store, built from one prefix by the cache's own key function.

The `{user}` hash tag keeps a user's keys in one Redis Cluster slot, for the scripts."""

import re
from collections.abc import Callable

from django.utils.crypto import salted_hmac

KEY_PREFIX = "tokens"

KeyFunc = Callable[[str], str]

# Parses our own keys whatever the cache's prefix and version: the key function keeps the
# raw key at the end (Django's default: "<prefix>:<version>:<key>").
KEY_SHAPE = re.compile(
    rf"{KEY_PREFIX}:\{{(?P<uid>[^}}]+)\}}:(?:s:(?P<sid>[A-Za-z0-9_-]+)|sessions)$"
)
# A session's marks (x: ended by a reuse, a: abandoned): each written with its TTL.
MARK_SHAPE = re.compile(rf"{KEY_PREFIX}:\{{[^}}]+\}}:[xa]:[A-Za-z0-9_-]+$")
THROTTLE_SHAPE = re.compile(rf"{KEY_PREFIX}:throttle:[a-z_]+:[0-9a-f]{{32}}$")


def session_and_index(key: KeyFunc, user_id: str, session_id: str) -> list[str]:
    return [session_key(key, user_id, session_id), index_key(key, user_id)]


def session_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:s:{session_id}")


def session_prefix(key: KeyFunc, user_id: str) -> str:
    """A session's key without its id, for the scripts to build session keys from index
    members; '' if the cache's key function does not simply prepend (then TTLs stay)."""
    prefix = session_key(key, user_id, "")
    return prefix if session_key(key, user_id, "x") == prefix + "x" else ""


def reuse_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:x:{session_id}")


def abandoned_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:a:{session_id}")


def index_key(key: KeyFunc, user_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:sessions")


def throttle_key(key: KeyFunc, scope: str, ident: str) -> str:
    # A keyed hash: fixed length and charset whatever the username, and neither usernames nor
    # addresses can be read back from Redis by trying likely ones.
    digest = salted_hmac("tokens.throttle", ident).hexdigest()[:32]
    return key(f"{KEY_PREFIX}:throttle:{scope}:{digest}")


def pattern(key: KeyFunc) -> str:
    """A SCAN pattern matching every key of the store, and nothing else."""
    return key(f"{KEY_PREFIX}:*")
