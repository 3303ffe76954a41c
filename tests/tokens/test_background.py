"""The background thread: deferred tasks run after `defer` returns, on a thread of their own
with its own database connection; failures are logged without their text; a full queue
drops a task with a warning; the queue is drained at exit; a forked process gets a thread
of its own."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tokens import background

ROOT = Path(__file__).resolve().parents[2]

WAIT = 10  # seconds: a failing test fails instead of hanging


def test_a_task_runs_on_the_background_thread_after_defer_returns(background_held):
    ran = []
    assert background.defer(lambda: ran.append(threading.current_thread().name), name="t")
    assert ran == []
    assert not background.wait_idle(0.05)  # still held: wait_idle says so
    background_held.set()
    assert background.wait_idle(WAIT)
    assert ran == ["tokens-background"]


def test_a_failing_task_is_logged_by_type_only_and_the_next_task_runs(caplog):
    def fail():
        raise ValueError("https://app.example.test/reset#MQ/secret-reset-token")

    ran = []
    background.defer(fail, name="password reset")
    background.defer(lambda: ran.append(1), name="next")
    assert background.wait_idle(WAIT)
    assert ran == [1]
    failures = [r for r in caplog.records if r.name == "tokens.background"]
    assert [r.levelname for r in failures] == ["ERROR"]
    assert "password reset" in failures[0].getMessage()
    assert "ValueError" in failures[0].getMessage()
    assert "secret-reset-token" not in caplog.text


def test_a_full_queue_drops_the_task_with_a_warning(background_held, caplog):
    ran = []
    for _ in range(background.MAX_QUEUED):
        assert background.defer(lambda: ran.append(1), name="filler")
    assert background.defer(lambda: ran.append("dropped"), name="one too many") is False
    assert "one too many dropped" in caplog.text
    background_held.set()
    assert background.wait_idle(WAIT)
    assert ran == [1] * background.MAX_QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_task_has_its_own_database_connection_closed_after_it(make_user):
    make_user(username="alice")  # committed: the task's connection sees committed rows only
    seen = {}

    def count_users():
        seen["users"] = get_user_model().objects.count()
        seen["connection"] = connections["default"]  # this thread's own

    background.defer(count_users, name="count")
    assert background.wait_idle(WAIT)
    assert seen["users"] == 1
    assert seen["connection"] is not connections["default"]
    assert seen["connection"].connection is None  # closed after the task


def test_the_queue_is_drained_at_exit():
    script = ("import django, time; django.setup(); from tokens import background; "
              "background.defer(lambda: (time.sleep(0.3), print('ran', flush=True)), name='t')")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran\n"


def test_a_forked_process_runs_its_tasks_on_a_thread_of_its_own():
    background.defer(lambda: None, name="start the parent's thread")
    assert background.wait_idle(WAIT)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's thread does not run
        try:
            ok = background.defer(lambda: os.write(write, b"ran"), name="child")
            os._exit(0 if ok and background.wait_idle(WAIT) else 1)
        finally:
            os._exit(2)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read, 16) == b"ran"
    os.close(read)
