"""Work that must not delay a response: one daemon thread per process runs deferred tasks.

A task is any callable taking no arguments. The thread starts on first use, so under
gunicorn it starts in the worker after the fork (a thread does not survive a fork; a
process that finds itself forked starts a new one). The queue is bounded: when it is full
the task is dropped with a warning, so a flood of requests cannot grow a process's memory
without bound. At interpreter exit the queue is drained for at most DRAIN_SECONDS.

A task runs with its own database connection (this thread's), closed after each task, and
its exceptions are logged by type only: an exception's text can carry an address or a link.
"""

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections

logger = logging.getLogger(__name__)

MAX_QUEUED = 1000
DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class _Task:
    run: Callable[[], None]
    name: str


class _Worker:
    """The queue, its thread, and a count of tasks queued or running (for wait_idle)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.Queue[_Task] = queue.Queue(maxsize=MAX_QUEUED)
        self.idle = threading.Condition()
        self.pending = 0
        self.thread = threading.Thread(target=self._loop, name="tokens-background",
                                       daemon=True)
        self.thread.start()

    def put(self, task: _Task) -> bool:
        with self.idle:
            self.pending += 1
        try:
            self.queue.put_nowait(task)
        except queue.Full:
            self._done()
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        with self.idle:
            return self.idle.wait_for(lambda: self.pending == 0, timeout=timeout)

    def _loop(self) -> None:
        while True:
            task = self.queue.get()
            try:
                task.run()
            except Exception as exc:  # nobody waits for the result: the log is the only witness
                logger.error("Background task %s failed: %s", task.name, type(exc).__name__)
            finally:
                connections.close_all()  # this thread's connections only
                self._done()

    def _done(self) -> None:
        with self.idle:
            self.pending -= 1
            self.idle.notify_all()


_lock = threading.Lock()
_worker: _Worker | None = None


def _current() -> _Worker:
    global _worker
    with _lock:
        if _worker is None or _worker.pid != os.getpid():
            first = _worker is None
            _worker = _Worker()
            if first:
                atexit.register(_drain)
        return _worker


def defer(task: Callable[[], None], *, name: str) -> bool:
    """Run `task` on this process's background thread, soon; False if the queue was full
    (the task is dropped, with a warning naming it)."""
    if _current().put(_Task(task, name)):
        return True
    logger.warning("Background queue full (%d tasks): %s dropped", MAX_QUEUED, name)
    return False


def wait_idle(timeout: float) -> bool:
    """Wait until every deferred task of this process has run; False if `timeout` (seconds)
    passed first."""
    return _worker is None or _worker.pid != os.getpid() or _worker.wait_idle(timeout)


def _drain() -> None:
    if not wait_idle(DRAIN_SECONDS):
        logger.warning("Background tasks still queued or running at exit were abandoned")
