"""The one clock of the token service; tests move it with time-machine."""

import time


def now() -> float:
    """Seconds since the epoch."""
    return time.time()


def now_ms() -> int:
    """Milliseconds since the epoch, as the store records times."""
    return int(now() * 1000)
