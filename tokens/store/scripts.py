"""The store's Lua scripts, each read once from its own file in `lua/` (its header names
its KEYS and ARGV). A script's `-- Uses:` line names the shared functions of `lua/lib/` it
is run with, prepended in that order."""

import re
from importlib.resources import files

from redis.commands.core import Script

_LUA = files(__package__) / "lua"
_USES = re.compile(rb"^-- Uses: (.+)\.$", re.MULTILINE)


def _load(name: str) -> Script:
    body = (_LUA / f"{name}.lua").read_bytes()
    uses = _USES.search(body)
    libs = [(_LUA / "lib" / f"{lib.strip().decode()}.lua").read_bytes()
            for lib in (uses[1].split(b",") if uses else [])]
    return Script(None, b"".join(libs) + body)


CREATE = _load("create")
ROTATE = _load("rotate")
RESTART = _load("restart")
REHASH = _load("rehash")
REVOKE = _load("revoke")
END_SESSIONS = _load("end_sessions")
LOGOUT = _load("logout")
ABANDON = _load("abandon")
END_IF_DEAD = _load("end_if_dead")
RESERVE = _load("reserve")
